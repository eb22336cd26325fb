"""Security rules the pages call: each decided once, here, never in a view."""
