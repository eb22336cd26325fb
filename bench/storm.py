"""The bcrypt login storm: password logins at a steady rate through the real login form.

Each login is what a browser does: GET /auth/login for the CSRF token and session cookie,
then POST the form. The users' hashes have the default cost (12), so each login costs the
server one bcrypt check (~200 ms of CPU here) in a worker thread, then sends a real push
to the emulator. Offered load is open-loop: login k starts at k/rate seconds whatever the
earlier ones are doing, so a server that cannot keep up shows it as growing latency rather
than a quietly lower rate.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.stats import summarize

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
PASSWORD = "bench password 12"
LOGIN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Login:
    started_ns: int
    finished_ns: int
    status: int
    pushed: bool  # redirected to the waiting page, i.e. the password step passed


async def _login(base_url: str, username: str) -> Login:
    started = time.monotonic_ns()
    jar = aiohttp.CookieJar(unsafe=True)
    timeout = aiohttp.ClientTimeout(total=LOGIN_TIMEOUT)
    try:
        async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as http:
            async with http.get(f"{base_url}/auth/login") as page:
                html = await page.text()
            match = CSRF.search(html)
            if match is None:
                return Login(started, time.monotonic_ns(), page.status, False)
            token = match.group(1) or match.group(2)
            form = {"csrf_token": token, "login": username, "password": PASSWORD}
            async with http.post(
                f"{base_url}/auth/login", data=form, allow_redirects=False
            ) as resp:
                await resp.read()
                location = resp.headers.get("Location", "")
                status = resp.status
    except (aiohttp.ClientError, TimeoutError):
        return Login(started, time.monotonic_ns(), 0, False)
    return Login(started, time.monotonic_ns(), status, location.endswith("/auth/2fa/wait"))


async def storm(
    base_url: str, usernames: Sequence[str], rate: float, seconds: float
) -> dict[str, Any]:
    """Offer `rate` logins/s for `seconds`; return what the server managed."""
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for k in range(total):
        delay = start + k / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_login(base_url, usernames[k % len(usernames)])))
    logins = list(await asyncio.gather(*tasks))
    first = min(login.started_ns for login in logins)
    last = max(login.finished_ns for login in logins)
    pushed = [login for login in logins if login.pushed]
    return {
        "offered": total,
        "offered_per_second": rate,
        "offered_seconds": seconds,
        "pushed": len(pushed),
        "failed": total - len(pushed),
        "statuses": sorted({login.status for login in logins}),
        "completed_per_second": round(len(pushed) / ((last - first) / 1e9), 2),
        "latency_ms": summarize((lg.finished_ns - lg.started_ns) / 1e6 for lg in logins),
    }
