"""What the phone and the mails say about a browser: "Browser on System", nothing more."""

from __future__ import annotations

import pytest

from push2fa.domain.useragent import describe

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
EDGE_WINDOWS = CHROME_WINDOWS + " Edg/126.0.0.0"
OPERA_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 OPR/112.0.0.0"
)
SAMSUNG_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1"
)
FIREFOX_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)
CHROME_OS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("agent", "described"),
    [
        (FIREFOX_LINUX, "Firefox on Linux"),
        (CHROME_WINDOWS, "Chrome on Windows"),
        (EDGE_WINDOWS, "Edge on Windows"),
        (OPERA_MAC, "Opera on macOS"),
        (SAMSUNG_ANDROID, "Samsung Internet on Android"),
        (CHROME_ANDROID, "Chrome on Android"),
        (SAFARI_IPHONE, "Safari on iOS"),
        (CHROME_IPAD, "Chrome on iOS"),
        (FIREFOX_IPHONE, "Firefox on iOS"),
        (SAFARI_MAC, "Safari on macOS"),
        (CHROME_OS, "Chrome on ChromeOS"),
    ],
)
def test_a_browser_is_named_with_its_system(agent: str, described: str) -> None:
    """Browsers that carry another's token (Edge and Opera say Chrome, Chrome says Safari;
    Android says Linux, iOS says Mac OS X) are named for what they are."""
    assert describe(agent) == described


@pytest.mark.parametrize(
    ("agent", "described"),
    [
        ("curl/8.5.0", "Unknown browser"),
        ("", "Unknown browser"),
        (None, "Unknown browser"),
        ("Something (Windows NT 10.0)", "Windows"),
        ("Firefox/1.0", "Firefox"),
    ],
)
def test_what_is_not_recognised_is_left_out(agent: str | None, described: str) -> None:
    assert describe(agent) == described


def test_only_the_start_of_a_long_agent_is_read() -> None:
    """A header padded to hide its tail (or to make the regexes work hard) is cut at 512."""
    padded = "x" * 600 + FIREFOX_LINUX
    assert describe(padded) == "Unknown browser"
    assert describe(FIREFOX_LINUX + "y" * 100_000) == "Firefox on Linux"


def test_the_description_is_never_the_raw_header() -> None:
    """What reaches the phone is one of a fixed set of names, not text the client chose."""
    hostile = "Firefox/1 <script>alert(1)</script> Linux\r\nX-Injected: 1"
    assert describe(hostile) == "Firefox on Linux"
