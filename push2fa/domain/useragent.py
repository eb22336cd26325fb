"""A short, human description of a browser from its User-Agent, for the push's details.

Deliberately small: the phone shows "Firefox on Linux", not a fingerprint.
"""

from __future__ import annotations

import re

_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Safari/")),
)
_SYSTEMS = (
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux|X11")),
)


def describe(user_agent: str | None) -> str:
    """E.g. "Firefox on Linux"; "Unknown browser" when nothing is recognised."""
    agent = (user_agent or "")[:512]
    browser = next((name for name, rx in _BROWSERS if rx.search(agent)), None)
    system = next((name for name, rx in _SYSTEMS if rx.search(agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"
