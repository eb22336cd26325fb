"""`next` targets after login: local paths only (push2fa/urls.py)."""

from __future__ import annotations

import pytest

from push2fa.urls import MAX_NEXT_LENGTH, safe_next


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
