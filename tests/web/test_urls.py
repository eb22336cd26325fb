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
        "/notes?q=two words",  # a space is not a control character
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


def test_one_trusted_proxy_and_a_direct_client_give_the_client():
    """The usual deployment: one proxy, which writes the one address it saw."""
    assert client_address("10.0.0.3", ["198.51.100.7"], 1) == "198.51.100.7"
    assert client_address("10.0.0.3", ["198.51.100.7", "203.0.113.9"], 2) == "198.51.100.7"


def test_a_header_split_over_several_lines_is_read_as_one_list():
    header = ["6.6.6.6, 198.51.100.7", "10.0.0.2"]
    assert client_address("10.0.0.3", header, 2) == "198.51.100.7"


def test_a_long_header_keeps_the_entries_the_trusted_proxies_wrote():
    """Only the rightmost entries are kept (the client can pad the left at will), and
    always enough of them for every trusted hop."""
    header = ", ".join(f"10.0.0.{n}" for n in range(1, 71))

    assert client_address("10.0.0.254", [header], 1) == "10.0.0.70"
    assert client_address("10.0.0.254", [header], 10) == "10.0.0.61"
    padded = "6.6.6.6, " * 100 + "203.0.113.5"
    assert client_address("10.0.0.254", [padded], 1) == "203.0.113.5"


def test_the_peer_is_normalised_like_any_address():
    assert client_address("2001:0db8:0000::0001", [], 0) == "2001:db8::1"


def test_a_peer_that_is_not_an_ip_address_is_kept_cut_short():
    """A Unix-socket peer, say: it still keys the per-IP limit, but stays bounded."""
    assert client_address("unix-socket", [], 0) == "unix-socket"
    assert client_address("s" * 100, [], 0) == "s" * 64


def test_no_peer_at_all_is_an_empty_address():
    assert client_address(None, [], 0) == ""
    assert client_address(None, [], 1) == ""


def test_an_address_is_at_most_64_characters_port_included():
    """The cap bounds the work on hostile entries; the port is not checked, the length is."""
    assert parse_address("1.2.3.4:" + "5" * 56) == "1.2.3.4"
    assert parse_address("1.2.3.4:" + "5" * 57) is None
    assert parse_address("[::1]:" + "9" * 100) is None


# --- TrustedProxies: the address and scheme every request is seen with ---------------------

from push2fa.web.urls import TrustedProxies  # noqa: E402


async def _receive() -> dict[str, str]:
    return {"type": "http.disconnect"}


async def _send(message: dict[str, str]) -> None:
    return None


async def _as_seen_by_the_app(
    scope: dict[str, object], trusted_proxies: int
) -> tuple[dict[str, object], object, object]:
    """Pass `scope` through the middleware to a small ASGI app that keeps what it got."""
    seen: list[tuple[dict[str, object], object, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append((scope, receive, send))

    await TrustedProxies(app, trusted_proxies)(scope, _receive, _send)
    assert len(seen) == 1
    return seen[0]


def _http(headers: list[tuple[bytes, bytes]], kind: str = "http") -> dict[str, object]:
    return {
        "type": kind,
        "scheme": "ws" if kind == "websocket" else "http",
        "headers": headers,
        "client": ("10.0.0.2", 5555),
    }


async def test_behind_a_proxy_the_app_sees_the_client_and_the_scheme_it_reported():
    headers = [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.7"), (b"x-forwarded-proto", b"https")]

    scope, receive, send = await _as_seen_by_the_app(_http(headers), 1)

    assert scope["client"] == ("198.51.100.7", 5555)
    assert scope["scheme"] == "https"
    assert receive is _receive and send is _send


async def test_behind_a_proxy_a_websocket_gets_the_websocket_scheme():
    https = [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https")]
    http = [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"http")]

    secure, _, _ = await _as_seen_by_the_app(_http(https, "websocket"), 1)
    plain, _, _ = await _as_seen_by_the_app(_http(http, "websocket"), 1)

    assert secure["scheme"] == "wss" and secure["client"] == ("198.51.100.7", 5555)
    assert plain["scheme"] == "ws"


async def test_the_scheme_is_the_one_the_trusted_proxy_wrote_not_the_clients():
    """The client may send its own X-Forwarded-Proto; the proxy appends what it saw."""
    listed = [(b"x-forwarded-proto", b"http,http,https")]
    appended = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-proto", b" HTTP ")]
    two_hops = [(b"x-forwarded-proto", b"http, https, http")]

    assert (await _as_seen_by_the_app(_http(listed), 1))[0]["scheme"] == "https"
    assert (await _as_seen_by_the_app(_http(appended), 1))[0]["scheme"] == "http"
    assert (await _as_seen_by_the_app(_http(two_hops), 2))[0]["scheme"] == "https"


async def test_a_scheme_that_is_not_http_or_https_changes_nothing():
    scope, _, _ = await _as_seen_by_the_app(_http([(b"x-forwarded-proto", b"javascript")]), 1)

    assert scope["scheme"] == "http"


async def test_behind_a_proxy_without_forwarded_headers_the_app_sees_the_proxy():
    scope, _, _ = await _as_seen_by_the_app(_http([(b"user-agent", b"curl")]), 1)

    assert scope["client"] == ("10.0.0.2", 5555)
    assert scope["scheme"] == "http"


async def test_behind_a_proxy_a_request_without_a_peer_gets_the_forwarded_client():
    """ASGI allows a scope without `client`; the proxy's header still names one."""
    request = _http([(b"x-forwarded-for", b"198.51.100.7")])
    del request["client"]

    scope, _, _ = await _as_seen_by_the_app(request, 1)

    assert scope["client"] == ("198.51.100.7", 0)


async def test_without_trusted_proxies_forwarded_headers_change_nothing():
    headers = [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https")]

    scope, _, _ = await _as_seen_by_the_app(_http(headers), 0)

    assert scope == _http(headers)


async def test_lifespan_events_pass_through_untouched():
    scope, receive, send = await _as_seen_by_the_app({"type": "lifespan"}, 1)

    assert scope == {"type": "lifespan"}
    assert receive is _receive and send is _send
