"""Security rules decided once, called by the views: the domain layer."""
