"""Security rules the pages call: each module owns one decision about accounts and logins."""
