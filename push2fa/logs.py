"""Logging set-up: one line per event, never a password, token or API key."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "push2fa", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.push2fa = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    logging.getLogger("push2fa").setLevel(level)
    logging.getLogger("hypercorn.error").setLevel(level)
