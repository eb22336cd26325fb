"""Passkeys and security keys: the pages (rules live in push2fa.domain.passkeys)."""
