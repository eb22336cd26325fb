"""A real multi-process push2fa for tests: app processes started with `push2fa serve`, the
Authy emulator as its own process (`push2fa emulator`, state in Redis), a load balancer in
front, all sharing one PostgreSQL database and one Redis, as in docs/deploy.md.

Each process gets its listening socket from the test (``--bind fd://N``), so no port can
be taken between choosing it and serving it. Their output goes to a log file whose tail
is shown when something fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import socketio
from sqlalchemy import func, select, update

from push2fa.authy import signature
from push2fa.db import Database
from push2fa.domain.passwords import hash_password
from push2fa.models import AuditEvent, LoginChallenge, User
from push2fa.realtime.broker import broker_channel
from tests.conftest import TEST_SECRET, csrf_from
from tests.scaleout.balancer import Backend, Balancer

PUSH2FA = Path(sys.executable).parent / "push2fa"
HOST = "127.0.0.1"
API_KEY = "scaleout-api-key-0123456789abcdef"
CONTROL_KEY = {"X-Authy-API-Key": API_KEY}  # the control API takes the key in a header only
APP_NAME = "push2fa-scale"
APP_ID = "5c5c5c5c5c5c5c5c5c5c5c5c"
PASSWORD = "correct horse battery"
START_TIMEOUT = 30.0
EVENT_TIMEOUT = 15.0


def listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://{HOST}:{sock.getsockname()[1]}"


def clean_environ(settings: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without any push2fa setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSH2FA_", "AUTHY_"))}
    return env | dict(settings)


async def until(condition: Any, timeout: float, what: str, every: float = 0.05) -> Any:
    """Wait for `condition()` (sync or async) to be truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


@dataclass
class Process:
    """One server process and where its output went."""

    name: str
    url: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    async def exited(self, timeout: float) -> int:
        return await asyncio.to_thread(self.popen.wait, timeout)

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])

    def log_count(self, pattern: str) -> int:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return len(re.findall(pattern, text))


def spawn(name: str, args: list[str], env: Mapping[str, str], workdir: Path) -> Process:
    sock = listener()
    fd = sock.fileno()
    log = workdir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [str(PUSH2FA), *args, "--bind", f"fd://{fd}"],
            env=dict(env),
            cwd=workdir,
            pass_fds=(fd,),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    process = Process(name, url_of(sock), popen, log)
    sock.close()  # the child holds its own copy of the listening socket
    return process


async def wait_ready(http: aiohttp.ClientSession, process: Process, path: str) -> None:
    async def answers() -> bool:
        if not process.alive():
            raise AssertionError(f"{process.name} exited early\n{process.tail()}")
        try:
            async with http.get(process.url + path) as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await until(answers, START_TIMEOUT, f"{process.name} to answer {path}", every=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{process.tail()}") from None


def registration_token(custom_user_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": APP_NAME,
        "iat": now,
        "exp": now + 300,
        "context": {"custom_user_id": custom_user_id, "authy_app_id": APP_ID},
    }
    return jwt.encode(claims, API_KEY, algorithm="HS256")


def callback_body(authy_id: int, uuid: str, status: str) -> dict[str, Any]:
    return {
        "authy_id": authy_id,
        "uuid": uuid,
        "status": status,
        "callback_action": "approval_request_status",
        "approval_request": {"transaction": {"status": status, "uuid": uuid, "reason": ""}},
    }


@dataclass
class Cluster:
    workdir: Path
    database_url: str
    redis_url: str
    public: socket.socket
    app_settings: dict[str, str]
    http: aiohttp.ClientSession
    emulator: Process | None = None
    apps: dict[str, Process] = field(default_factory=dict)
    balancer: Balancer | None = None
    db: Database | None = None

    @property
    def public_url(self) -> str:
        return url_of(self.public)

    @property
    def emulator_api(self) -> str:
        assert self.emulator is not None
        return f"{self.emulator.url}/_emulator/api"

    def common_env(self) -> dict[str, str]:
        return {
            "PUSH2FA_SECRET_KEY": TEST_SECRET,
            "PUSH2FA_PUBLIC_URL": self.public_url,
            "PUSH2FA_PUSH_SERVICE": "emulator",
            "AUTHY_PRODUCTION_API_KEY": API_KEY,
            "AUTHY_APP_NAME": APP_NAME,
            "AUTHY_APP_ID": APP_ID,
            "PUSH2FA_LOG_LEVEL": "info",
        }

    async def start_emulator(self, callback_url: str | None = None) -> Process:
        env = clean_environ(
            self.common_env()
            | {
                "PUSH2FA_INSTANCE_PATH": str(self.workdir / "instance-emulator"),
                # The push service keeps its data in the app's database, like the apps.
                "PUSH2FA_DATABASE_URL": self.database_url,
            }
        )
        target = callback_url or f"{self.public_url}/webhooks/authy"
        self.emulator = spawn("emulator", ["emulator", "--callback-url", target], env, self.workdir)
        await wait_ready(self.http, self.emulator, "/_emulator/phone")
        return self.emulator

    def app_env(self, name: str) -> dict[str, str]:
        return clean_environ(
            self.common_env()
            | {
                # A folder per process, as on separate hosts: nothing shared but the services.
                "PUSH2FA_INSTANCE_PATH": str(self.workdir / f"instance-{name}"),
                "PUSH2FA_DATABASE_URL": self.database_url,
                "PUSH2FA_REDIS_URL": self.redis_url,
                "PUSH2FA_EMULATOR_URL": self.emulator_api.removesuffix("/api"),
                "PUSH2FA_BCRYPT_ROUNDS": "4",
                # One IP sends every login here: limits and matching are other tests' topic.
                "PUSH2FA_RATE_LIMITS": "0",
                "PUSH2FA_NUMBER_MATCHING": "off",
                # The safety-net poll waits long unless a test wants it: webhooks are proven.
                "PUSH2FA_STATUS_POLL_DELAY": "30",
                **self.app_settings,
            }
        )

    async def start_apps(self, *names: str) -> None:
        started = [spawn(name, ["serve"], self.app_env(name), self.workdir) for name in names]
        for process in started:
            self.apps[process.name] = process
        await asyncio.gather(*(wait_ready(self.http, p, "/readyz") for p in started))
        backends = [Backend(p.name, HOST, p.port) for p in self.apps.values()]
        if self.balancer is None:
            self.balancer = Balancer(backends)
            await self.balancer.start(self.public)
        else:
            self.balancer.backends = backends

    async def restart_app(self, name: str) -> Process:
        process = spawn(name, ["serve"], self.app_env(name), self.workdir)
        self.apps[name] = process
        await wait_ready(self.http, process, "/readyz")
        assert self.balancer is not None
        self.balancer.backends = [Backend(p.name, HOST, p.port) for p in self.apps.values()]
        return process

    async def stop(self) -> None:
        processes = [*self.apps.values(), *([self.emulator] if self.emulator else [])]
        for process in processes:
            process.send(signal.SIGTERM)
        for process in processes:
            try:
                await process.exited(15)
            except subprocess.TimeoutExpired:
                process.send(signal.SIGKILL)
                await process.exited(5)
        if self.balancer is not None:
            await self.balancer.close()
        else:
            self.public.close()
        if self.db is not None:
            await self.db.dispose()

    def tails(self) -> str:
        processes = [*self.apps.values(), *([self.emulator] if self.emulator else [])]
        return "\n".join(p.tail() for p in processes)

    # --- the database, read the way an operator would ---------------------------------

    def database(self) -> Database:
        if self.db is None:
            self.db = Database(self.database_url)
        return self.db

    async def count(self, event: str) -> int:
        async with self.database().session() as db:
            query = select(func.count()).where(AuditEvent.event == event)
            return int((await db.execute(query)).scalar_one())

    async def latest_challenge(self, username: str) -> LoginChallenge:
        async with self.database().session() as db:
            query = (
                select(LoginChallenge)
                .join(User, User.id == LoginChallenge.user_id)
                .where(User.username == username)
                .order_by(LoginChallenge.id.desc())
                .limit(1)
            )
            return (await db.execute(query)).scalar_one()

    async def expire_now(self, public_id: str) -> None:
        """Move a challenge's expiry into the past, as if its two minutes were up."""
        from push2fa.models import utcnow

        async with self.database().session() as db:
            await db.execute(
                update(LoginChallenge)
                .where(LoginChallenge.public_id == public_id)
                .values(expires_at=utcnow())
            )
            await db.commit()

    async def seed_users(self, count: int, prefix: str = "user") -> dict[str, int]:
        """`count` users with push 2FA on, enrolled on the emulator: {username: authy_id}.
        Rows go straight into the database (one bcrypt hash for all); devices are enrolled
        through the emulator's control API with a registration token, as scanning does."""
        password_hash = await hash_password(PASSWORD, 4)
        async with self.database().session() as db:
            users = [
                User(
                    username=f"{prefix}{n}",
                    email=f"{prefix}{n}@example.com",
                    password_hash=password_hash,
                )
                for n in range(count)
            ]
            db.add_all(users)
            await db.commit()
            ids = {user.username: user.id for user in users}

        semaphore = asyncio.Semaphore(20)

        async def enrol(user_id: int) -> int:
            async with (
                semaphore,
                self.http.post(
                    f"{self.emulator_api}/devices",
                    json={"token": registration_token(str(user_id))},
                    headers=CONTROL_KEY,
                ) as resp,
            ):
                assert resp.status == 201, await resp.text()
                return int((await resp.json())["authy_id"])

        authy_ids = await asyncio.gather(*(enrol(user_id) for user_id in ids.values()))
        from push2fa.models import utcnow

        async with self.database().session() as db:
            for user_id, authy_id in zip(ids.values(), authy_ids, strict=True):
                await db.execute(
                    update(User)
                    .where(User.id == user_id)
                    .values(authy_id=authy_id, push_enabled_at=utcnow())
                )
            await db.commit()
        return dict(zip(ids, authy_ids, strict=True))

    # --- the phone (emulator control API) ---------------------------------------------

    async def pending_request(self, authy_id: int) -> dict[str, Any]:
        async def first_request() -> dict[str, Any] | None:
            async with self.http.get(
                f"{self.emulator_api}/devices/{authy_id}/requests", headers=CONTROL_KEY
            ) as r:
                assert r.status == 200, await r.text()
                found: list[dict[str, Any]] = await r.json()
                return found[-1] if found else None

        request: dict[str, Any] = await until(first_request, 10, f"a push to {authy_id}")
        return request

    async def decide(self, uuid: str, status: str = "approved") -> int | None:
        """Answer on the phone; the HTTP status the callback got (None: undeliverable)."""
        async with self.http.post(
            f"{self.emulator_api}/requests/{uuid}", json={"status": status}, headers=CONTROL_KEY
        ) as resp:
            assert resp.status == 200, await resp.text()
            callback_status: int | None = (await resp.json())["callback_status"]
            return callback_status

    async def post_webhook(self, target: str, authy_id: int, uuid: str, status: str) -> int:
        """A callback signed as Authy signs it (over the public URL), sent to `target`."""
        body = callback_body(authy_id, uuid, status)
        nonce = f"{time.time():.6f}"
        sig = signature.sign(API_KEY, nonce, "POST", f"{self.public_url}/webhooks/authy", body)
        async with self.http.post(
            f"{target}/webhooks/authy",
            json=body,
            headers={"X-Authy-Signature": sig, "X-Authy-Signature-Nonce": nonce},
        ) as resp:
            return resp.status

    def channel(self) -> str:
        """The Socket.IO pub/sub channel the app processes share."""
        return broker_channel(self.public_url)


BROWSER_REQUEST_TIMEOUT = 90


class Browser:
    """A browser: a cookie jar for pages, and a Socket.IO client as the waiting page has.

    Cookies do not depend on the port, so one browser can talk to any process directly or
    through the balancer, exactly like a browser behind a load balancer."""

    def __init__(self, url: str, *, reconnect: bool = False) -> None:
        self.url = url
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            # A page load's deadline, not a speed check: 200 browsers logging in at once
            # on a shared 2-core machine queue behind bcrypt for longer than 30 s.
            timeout=aiohttp.ClientTimeout(total=BROWSER_REQUEST_TIMEOUT),
        )
        # The socket shares the page's cookie jar, as in a browser: every (re)connect
        # carries the current cookies.
        self.socket = socketio.AsyncClient(
            http_session=self.http,
            reconnection=reconnect,
            reconnection_delay=0.2,
            reconnection_delay_max=1,
            reconnection_attempts=50,
        )
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.connects = 0
        self._changed = asyncio.Event()
        self.socket.on("challenge", self._on_challenge)
        self.socket.on("connect", self._on_connect)
        self.last_html = ""

    async def _on_challenge(self, data: dict[str, Any]) -> None:
        self.events.append((time.perf_counter(), data))
        self._changed.set()

    async def _on_connect(self) -> None:
        self.connects += 1
        self._changed.set()

    async def close(self) -> None:
        if self.socket.connected or self.socket.reconnection:
            await self.socket.disconnect()
        await self.http.close()

    async def get(self, path: str, base: str | None = None) -> aiohttp.ClientResponse:
        async with self.http.get((base or self.url) + path) as resp:
            self.last_html = await resp.text()
            return resp

    async def post_form(
        self, path: str, data: dict[str, str], page: str, base: str | None = None
    ) -> aiohttp.ClientResponse:
        await self.get(page, base)
        form = {"csrf_token": csrf_from(self.last_html), **data}
        async with self.http.post((base or self.url) + path, data=form) as resp:
            self.last_html = await resp.text()
            return resp

    async def login(self, username: str, base: str | None = None) -> None:
        resp = await self.post_form(
            "/auth/login", {"login": username, "password": PASSWORD}, "/auth/login", base
        )
        assert resp.url.path == "/auth/2fa/wait", (resp.status, self.last_html[:300])

    async def connect(self, url: str | None = None) -> None:
        # Patient like a browser: a saturated test machine can take seconds to answer.
        await self.socket.connect(url or self.url, transports=["websocket"], wait_timeout=30)

    def statuses(self) -> list[str]:
        return [str(data.get("status")) for _, data in self.events]

    async def wait_status(self, status: str, timeout: float = EVENT_TIMEOUT) -> float:
        """When `status` arrived (perf_counter), waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while True:
            for arrived, data in self.events:
                if data.get("status") == status:
                    return arrived
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {status!r} event; got {self.statuses()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                continue

    async def wait_connects(self, count: int, timeout: float = EVENT_TIMEOUT) -> None:
        await until(lambda: self.connects >= count, timeout, f"socket connect #{count}")

    async def complete(self, base: str | None = None) -> aiohttp.ClientResponse:
        """What the page does on `approved`: the CSRF-protected POST that logs in."""
        return await self.post_form("/auth/2fa/complete", {}, "/auth/2fa/wait", base)
