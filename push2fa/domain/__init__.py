"""Security rules the views and services call: one module per topic."""
