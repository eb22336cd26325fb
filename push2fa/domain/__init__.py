"""Security rules the pages call: each decision about an account or factor, in one place."""
