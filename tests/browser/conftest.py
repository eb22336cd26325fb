"""Browser tests: Playwright driving Debian's Chromium against the real app under Hypercorn.

The app runs as a user would start it with no Authy account: the zero-config default, the
Authy emulator mounted in-process under /_emulator, its public URL the server's own.
Chromium is the system's (/usr/bin/chromium); no browser is ever downloaded. Without it
these tests skip with the reason, except under PUSH2FA_REQUIRE_BROWSER=1 (set by .ci/run),
where a missing browser is a failure.

Every page of every browser context is watched: a console error, an uncaught exception, a
Content-Security-Policy violation or a 5xx response is a problem the test reports. The
pages never reach the internet: when the front-end libraries fall back to the pinned CDN
(no `static/vendor/`), the CDN's answers are served from `node_modules/`, byte for byte
the files the SRI hashes pin.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from push2fa.assets import CDN_ORIGIN, VENDOR, local_assets_present
from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.conftest import BROWSER_WAIT_MS, TEST_SECRET
from tests.servers import reserve_listener, serve_asgi, url_of

CHROMIUM = Path("/usr/bin/chromium")
# axe-core from the npm registry (package-lock.json, npm ci); never copied into git.
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Read at import: the suite's autouse fixture hides every PUSH2FA_* setting from tests.
SCREENSHOTS = os.environ.get("PUSH2FA_SCREENSHOTS") or None

# Reports CSP violations on the console, where the watch below collects them, whatever
# the browser itself chooses to log. Added by Playwright, so the CSP does not apply to it.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  const blocked = event.blockedURI || "inline code";
  console.error(`CSP violation: ${event.violatedDirective} blocked ${blocked}`);
});
"""


def browser_required() -> bool:
    return os.environ.get("PUSH2FA_REQUIRE_BROWSER") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail where a browser is required (CI)."""
    if browser_required():
        pytest.fail(f"{reason} (PUSH2FA_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def vendor_files_available() -> bool:
    return local_assets_present() or all(f.installed.is_file() for f in VENDOR.values())


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    """A headless Debian Chromium, or a skip saying why there is none."""
    if not CHROMIUM.is_file():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if not vendor_files_available():
        unavailable("Bootstrap and socket.io-client are not installed (make assets)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("the playwright package is not installed (make install-dev)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def site(tmp_path: Path, database_url: str) -> AsyncIterator[str]:
    """The real app with the in-process emulator, served by Hypercorn; yields its URL."""
    listener = reserve_listener()
    url = url_of(listener)
    app = create_app(
        {
            "secret_key": TEST_SECRET,
            "instance_path": str(tmp_path / "instance"),
            "database_url": database_url,
            "bcrypt_rounds": 4,
            "public_url": url,
        }
    )
    assert app.extensions["push2fa"].settings.emulator_in_process
    async with serve_asgi(build_asgi(app), listener=listener):
        yield url


@pytest.fixture
async def localhost_site(tmp_path: Path, database_url: str) -> AsyncIterator[str]:
    """The same app reached by name, http://localhost:PORT, as the quick start says: there
    the push service's Approver is on (WebAuthn refuses IP addresses)."""
    listener = reserve_listener()
    url = url_of(listener).replace("://127.0.0.1:", "://localhost:")
    app = create_app(
        {
            "secret_key": TEST_SECRET,
            "instance_path": str(tmp_path / "instance"),
            "database_url": database_url,
            "bcrypt_rounds": 4,
            "public_url": url,
        }
    )
    async with serve_asgi(build_asgi(app), listener=listener):
        yield url


class PageWatch:
    """Collects what must not happen on any page: console errors, uncaught exceptions,
    CSP violations, server errors."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def watch(self, name: str, page: Any) -> None:
        def on_console(message: Any) -> None:
            if message.type == "error":
                self.problems.append(f"{name} {page.url}: console error: {message.text}")

        def on_page_error(error: Any) -> None:
            self.problems.append(f"{name} {page.url}: uncaught {error}")

        def on_response(response: Any) -> None:
            if response.status >= 500:
                self.problems.append(f"{name}: {response.status} from {response.url}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.on("response", on_response)

    def assert_clean(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


async def serve_vendor_file(route: Any) -> None:
    """Answer the pinned CDN from node_modules (same files, same SRI); nothing else leaves."""
    for vendor in VENDOR.values():
        if route.request.url == vendor.cdn_url and vendor.installed.is_file():
            content_type = "text/css" if vendor.kind == "css" else "text/javascript"
            await route.fulfill(
                path=vendor.installed,
                headers={
                    "Content-Type": f"{content_type}; charset=utf-8",
                    "Access-Control-Allow-Origin": "*",
                },
            )
            return
    await route.abort()


@pytest.fixture
def page_watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
async def open_page(
    chromium: Any, page_watch: PageWatch
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Open a page in a fresh browser context (its own cookies: another person, another
    device), watched by `page_watch`."""
    contexts: list[Any] = []

    async def opener(
        name: str,
        *,
        width: int = 1000,
        height: int = 800,
        color_scheme: str = "light",
        axe: bool = False,
        javascript: bool = True,
    ) -> Any:
        context = await chromium.new_context(
            viewport={"width": width, "height": height},
            color_scheme=color_scheme,
            java_script_enabled=javascript,
        )
        contexts.append(context)
        context.set_default_timeout(BROWSER_WAIT_MS)
        await context.add_init_script(CSP_REPORTER)
        if axe:
            # As an init script (like the reporter) axe-core is outside the page's CSP, so
            # the CSP stays enforced and watched while the pages are checked.
            await context.add_init_script(path=str(AXE))
        await context.route(f"{CDN_ORIGIN}/**", serve_vendor_file)
        page = await context.new_page()
        page_watch.watch(name, page)
        return page

    yield opener
    for context in contexts:
        await context.close()


@pytest.fixture
def screenshot() -> Callable[[Any, str], Awaitable[None]]:
    """Save the page's viewport as <PUSH2FA_SCREENSHOTS>/<name>.png when that is set."""

    async def save(page: Any, name: str) -> None:
        if SCREENSHOTS is None:
            return
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=folder / f"{name}.png", animations="disabled", caret="hide")

    return save
