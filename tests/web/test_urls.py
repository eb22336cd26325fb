"""`next` targets after login: local paths only (push2fa/web/urls.py)."""

from __future__ import annotations

import pytest

from push2fa.web.urls import MAX_NEXT_LENGTH, safe_next


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/user/alice",
        "/profile/edit?tab=about&x=1",
        "/a/b/c#section",
        "/user/al%2Fice",
        "/path:with:colons",
        "/" + "a" * (MAX_NEXT_LENGTH - 1),
    ],
)
def test_local_paths_are_kept(target: str):
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "//evil.com/path",
        "///evil.com",
        "/\\evil.com",
        "\\\\evil",
        "\\/evil.com",
        "/foo\\bar",
        "https://evil.com",
        "http://evil.com/",
        "HTTPS://evil.com",
        "ftp://evil.com",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http:/x",
        "http:evil.com",
        "evil.com",
        "user/alice",
        "?next=/",
        "#frag",
        " /user/alice",
        "/\tevil.com",
        "/\t/evil.com",
        "\t//evil.com",
        "/\n/evil.com",
        "/\r/evil.com",
        "/\r\nLocation: //evil.com",
        "/ok\x00",
        "/\x7f",
        "/\x1b[31m",
        "/" + "a" * MAX_NEXT_LENGTH,
    ],
)
def test_anything_that_can_leave_the_site_falls_back_to_home(target: str):
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", [None, ""])
def test_missing_next_falls_back_to_home(target: str | None):
    assert safe_next(target) == "/"


def test_fallback_can_be_chosen():
    assert safe_next("//evil.com", default="/user/alice") == "/user/alice"
    assert safe_next(None, default="/auth/login") == "/auth/login"


# --- the client's address (push2fa/web/urls.py) -----------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from push2fa.web.urls import client_address, parse_address  # noqa: E402


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 1.2.3.4 ", "1.2.3.4"),
        ("1.2.3.4:5678", "1.2.3.4"),
        ("::1", "::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:0db8:0000::0001", "2001:db8::1"),
    ],
)
def test_addresses_in_the_forms_proxies_write_are_read(value: str, expected: str):
    assert parse_address(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "999.1.1.1", "1.2.3", "[::1", "fe80::1%eth0", "unknown", "x" * 100],
)
def test_anything_else_is_not_an_address(value: str):
    assert parse_address(value) is None


def test_without_trusted_proxies_the_header_is_ignored():
    assert client_address("127.0.0.1", ["6.6.6.6"], 0) == "127.0.0.1"


def test_behind_proxies_the_client_is_that_many_hops_from_the_right():
    header = ["6.6.6.6, 198.51.100.7, 10.0.0.2"]
    assert client_address("10.0.0.3", header, 1) == "10.0.0.2"
    assert client_address("10.0.0.3", header, 2) == "198.51.100.7"


def test_a_short_or_malformed_header_falls_back_to_the_peer():
    assert client_address("10.0.0.3", [], 1) == "10.0.0.3"
    assert client_address("10.0.0.3", ["1.1.1.1"], 2) == "10.0.0.3"
    assert client_address("10.0.0.3", ["1.1.1.1, junk"], 1) == "10.0.0.3"


@given(st.lists(st.text(max_size=300), max_size=5), st.integers(0, 10))
def test_any_header_gives_the_peer_or_a_real_address(headers: list[str], hops: int):
    result = client_address("10.0.0.3", headers, hops)
    assert result == "10.0.0.3" or parse_address(result) == result
