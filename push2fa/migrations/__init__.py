"""Alembic migrations: the only way push2fa's schema is made, in tests too."""
