"""Every rendered page: security headers, no inline script, labels, alt text, no third parties.

The walk covers the account and profile pages in the states a user sees them (empty form,
form with errors, logged in, error pages), so a template change that adds an inline
handler, an unlabeled input or a third-party URL fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from quart import Quart

from push2fa.assets import CDN_ORIGIN
from push2fa.web.policy import public
from tests.conftest import csrf_from, get_csrf, login, register
from tests.web.auth.mailbox import reset_path_in, sent_mail

CDN_PREFIX = f"{CDN_ORIGIN}/npm/"
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "srcset", "poster", "data", "cite"}
UNLABELED_INPUT_TYPES = {"hidden", "submit", "button", "reset", "image"}


@dataclass
class PageAudit(HTMLParser):
    """Collects what the checks need from one HTML page."""

    problems: list[str] = field(default_factory=list)
    labels_for: set[str] = field(default_factory=set)
    controls: list[tuple[str, str | None]] = field(default_factory=list)
    h1_count: int = 0
    html_lang: str | None = None
    title: str = ""
    _in_title: bool = False

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        where = f"<{tag} {' '.join(f'{k}={v!r}' for k, v in attrs)}>"
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline event handler {name} in {where}")
            if name == "style":
                self.problems.append(f"inline style (blocked by the CSP) in {where}")
            if name in URL_ATTRIBUTES and value and _is_external(value):
                self.problems.append(f"third-party URL in {where}")
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL in {where}")
        if tag == "script":
            if not a.get("src"):
                self.problems.append("inline <script> (no src)")
            elif str(a["src"]).startswith(CDN_PREFIX) and not a.get("integrity"):
                self.problems.append(f"CDN script without SRI: {where}")
        cdn_link = tag == "link" and str(a.get("href", "")).startswith(CDN_PREFIX)
        if cdn_link and not a.get("integrity"):
            self.problems.append(f"CDN stylesheet without SRI: {where}")
        if tag == "style":
            self.problems.append("<style> element (blocked by the CSP)")
        if tag == "img" and "alt" not in a:
            self.problems.append(f"image without alt text: {where}")
        if tag == "label" and a.get("for"):
            self.labels_for.add(str(a["for"]))
        if tag == "input" and str(a.get("type", "text")).lower() not in UNLABELED_INPUT_TYPES:
            self.controls.append((where, a.get("id")))
        if tag in {"textarea", "select"}:
            self.controls.append((where, a.get("id")))
        if tag == "h1":
            self.h1_count += 1
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def audit(self, html: str) -> list[str]:
        self.feed(html)
        self.close()
        problems = list(self.problems)
        for where, control_id in self.controls:
            if not control_id or control_id not in self.labels_for:
                problems.append(f"form control without <label for>: {where}")
        if self.h1_count != 1:
            problems.append(f"{self.h1_count} <h1> elements (want exactly one)")
        if self.html_lang != "en":
            problems.append("<html> without lang")
        if not self.title.strip():
            problems.append("empty <title>")
        for url in re.findall(r"(?:https?:)?//[^\s\"'<>)]+", html):
            if _is_external(url):
                problems.append(f"third-party URL in the page text: {url}")
        return problems


def _is_external(url: str) -> bool:
    value = url.strip().lower()
    if not (value.startswith(("http://", "https://", "//"))):
        return False
    return not value.startswith(CDN_PREFIX)


def header_problems(response: Any, https: bool = False) -> list[str]:
    headers = response.headers
    problems = []
    csp = headers.get("Content-Security-Policy", "")
    directives = {
        part.strip().split(" ", 1)[0]: part.strip() for part in csp.split(";") if part.strip()
    }
    script_src = directives.get("script-src", "")
    if not script_src.startswith("script-src 'self'"):
        problems.append(f"script-src is {script_src!r}")
    if "'unsafe-inline'" in csp or "'unsafe-eval'" in csp:
        problems.append("CSP allows unsafe-inline/unsafe-eval")
    if directives.get("frame-ancestors") != "frame-ancestors 'none'":
        problems.append("CSP lacks frame-ancestors 'none'")
    if directives.get("object-src") != "object-src 'none'":
        problems.append("CSP lacks object-src 'none'")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if headers.get("Referrer-Policy") not in {"same-origin", "no-referrer", "strict-origin"}:
        problems.append(f"Referrer-Policy is {headers.get('Referrer-Policy')!r}")
    hsts = headers.get("Strict-Transport-Security")
    if https and not (hsts and "max-age=" in hsts):
        problems.append("no HSTS over https")
    if not https and hsts:
        problems.append("HSTS sent for a plain-http site")
    return problems


async def check_page(response: Any, status: int = 200, https: bool = False) -> str:
    assert response.status_code == status, (response.status_code, status)
    assert response.headers["Content-Type"].startswith("text/html")
    assert header_problems(response, https) == []
    html = str(await response.get_data(as_text=True))
    assert PageAudit().audit(html) == []
    return html


# --- the auditor itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        ("<script>alert(1)</script>", "inline <script>"),
        ('<button onclick="x()">Go</button>', "inline event handler onclick"),
        ('<input type="text" id="q" name="q">', "form control without <label for>"),
        ('<textarea name="t"></textarea>', "form control without <label for>"),
        ('<img src="/a.png">', "image without alt text"),
        ('<img src="https://www.gravatar.com/avatar/x" alt="">', "third-party URL"),
        ('<p style="color:red">x</p>', "inline style"),
        ('<a href="javascript:alert(1)">x</a>', "javascript: URL"),
        ("<p>see //evil.example/x</p>", "third-party URL in the page text"),
    ],
)
def test_page_audit_catches(snippet: str, problem: str):
    html = f'<html lang="en"><title>t</title><h1>x</h1>{snippet}</html>'

    assert any(problem in found for found in PageAudit().audit(html))


def test_page_audit_passes_a_clean_page():
    html = (
        '<html lang="en"><title>t</title><h1>x</h1><label for="q">Q</label>'
        '<input id="q" type="text"><input type="hidden" name="csrf_token" value="1">'
        f'<script src="{CDN_PREFIX}bootstrap@5/x.js" integrity="sha384-x"></script>'
        '<img src="/a.svg" alt="A"></html>'
    )

    assert PageAudit().audit(html) == []


# --- the walk -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/auth/login", "/auth/register", "/auth/reset"])
async def test_anonymous_pages_are_clean(client, path: str):
    await check_page(await client.get(path))


async def test_login_page_with_next_is_clean(client):
    await check_page(await client.get("/auth/login?next=/user/alice"))


async def test_register_page_with_every_error_is_clean(client):
    token = await get_csrf(client, "/auth/register")
    response = await client.post(
        "/auth/register",
        form={"csrf_token": token, "username": "!", "email": "x", "password": "a"},
    )

    html = await check_page(response, status=400)
    for field_id in ("username", "email", "password", "password2"):
        assert f'id="{field_id}-errors"' in html
        tag = re.search(rf'<input [^>]*id="{field_id}"[^>]*>', html)
        assert tag, field_id
        assert re.search(rf'aria-describedby="[^"]*\b{field_id}-errors\b', tag.group(0))
        assert 'aria-invalid="true"' in tag.group(0)


async def test_login_page_with_wrong_password_is_clean(client):
    await register(client)
    await check_page(await login(client, "alice", "wrong password"), status=400)


async def test_csrf_failure_page_is_clean(client):
    await client.get("/auth/register")
    await check_page(await client.post("/auth/register", form={"username": "x"}), status=400)


async def test_reset_password_page_is_clean(app: Quart, client):
    await register(client, "alice", email="alice@example.com")
    token = await get_csrf(client, "/auth/reset")
    await client.post("/auth/reset", form={"csrf_token": token, "email": "alice@example.com"})
    [mail] = await sent_mail(app)

    await check_page(await client.get(reset_path_in(mail)))


@pytest.mark.parametrize("path", ["/", "/user/alice", "/user/bob", "/profile/edit"])
async def test_logged_in_pages_are_clean(app: Quart, client, path: str):
    await register(app.test_client(), "bob")
    await register(client, "alice")
    await login(client)

    await check_page(await client.get(path))


async def test_edit_profile_page_with_error_is_clean(client):
    await register(client)
    await login(client)
    token = await get_csrf(client, "/profile/edit")

    response = await client.post("/profile/edit", form={"csrf_token": token, "about_me": "x" * 300})

    await check_page(response, status=400)


async def test_404_page_is_clean_html(client):
    html = await check_page(await client.get("/no/such/page"), status=404)

    assert "Page not found" in html


async def test_405_page_is_clean_html(client):
    await check_page(await client.get("/auth/logout"), status=405)


async def test_413_page_is_clean_html(client):
    response = await client.post(
        "/auth/login",
        data=b"x" * (257 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert "Request too large" in await check_page(response, status=413)


async def test_view_that_raises_gets_the_500_page(app: Quart, client):
    @app.get("/test-only/boom")
    @public
    async def boom() -> str:
        raise RuntimeError("a bug in a view")

    response = await client.get("/test-only/boom")

    html = await check_page(response, status=500)
    assert "Something went wrong" in html
    assert "a bug in a view" not in html
    assert (await client.get("/")).status_code == 200  # the app keeps serving


async def test_500_page_for_logged_in_user_is_clean(app: Quart, client):
    @app.get("/test-only/boom-user")
    @public
    async def boom_user() -> str:
        raise ValueError("boom")

    await register(client)
    await login(client)

    html = await check_page(await client.get("/test-only/boom-user"), status=500)
    assert "Log out" in html


async def test_flash_messages_render_as_a_live_status_region(client):
    await register(client)

    html = await check_page(await client.get("/auth/login"))

    assert re.search(
        r'<div class="flash-messages" role="status" aria-live="polite">\s*'
        r'<div class="alert alert-success">Your account is ready\. Please log in\.</div>',
        html,
    )
    assert "Your account is ready" not in await (await client.get("/auth/login")).get_data(
        as_text=True
    )  # shown once


async def test_non_html_responses_carry_the_security_headers_too(client):
    for path in ("/healthz", "/user/alice/avatar.svg", "/static/js/time.js"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert header_problems(response) == [], path


@pytest.fixture
def https_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    overrides["public_url"] = "https://example.test"
    return overrides


async def test_https_site_sends_hsts(https_overrides, app: Quart):
    client = app.test_client()
    for path in ("/", "/auth/login", "/no/such/page"):
        response = await client.get(path, scheme="https")
        assert "max-age=" in response.headers.get("Strict-Transport-Security", ""), path
        assert header_problems(response, https=True) == [], path


async def test_pages_that_show_personal_data_are_not_cached(client):
    await register(client)
    await login(client)

    for path in ("/", "/user/alice", "/profile/edit", "/auth/login"):
        assert (await client.get(path)).headers.get("Cache-Control") == "no-store", path


async def test_csrf_token_in_the_navbar_logs_out(client):
    await register(client)
    await login(client)
    token = csrf_from(await (await client.get("/user/alice")).get_data(as_text=True))

    response = await client.post("/auth/logout", form={"csrf_token": token})

    assert response.status_code == 302
    assert "Hello, alice!" not in await (await client.get("/")).get_data(as_text=True)


def parameterless_get_paths(app: Quart) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and not rule.arguments and rule.endpoint != "static"
    )


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
async def test_every_page_without_parameters_is_clean(app: Quart, client, logged_in: bool):
    if logged_in:
        await register(client)
        await login(client)
    paths = parameterless_get_paths(app)
    assert {"/", "/auth/login", "/auth/register", "/auth/reset", "/healthz"} <= set(paths)

    for path in paths:
        response = await client.get(path)
        assert response.status_code < 500, path
        assert header_problems(response) == [], path
        if response.headers["Content-Type"].startswith("text/html"):
            html = await response.get_data(as_text=True)
            assert PageAudit().audit(html) == [], path
