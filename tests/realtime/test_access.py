"""The Socket.IO connect-time check, over a real server: a login cookie gets the user's
room only while its server-side session is live."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import socketio
from sqlalchemy import event as sql_event
from sqlalchemy import update
from yarl import URL

from push2fa.domain import challenges, enrollment
from push2fa.domain.login_flow import SESSION_KEY
from push2fa.models import Enrollment, User, UserSession, utcnow
from push2fa.realtime.access import CONNECT_READS, make_authorizer
from push2fa.realtime.rooms import CHALLENGE_EVENT, ENROLLMENT_EVENT, challenge_room, user_room
from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.conftest import csrf_from, login, register
from tests.servers import reserve_listener, serve_asgi, url_of

PASSWORD = "correct horse battery"


class Site:
    def __init__(self, url: str, app: Any) -> None:
        self.url, self.app = url, app

    def browser(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def post_form(self, http: aiohttp.ClientSession, path: str, data: dict[str, str]):
        page = await (await http.get(self.url + path)).text()
        form = {"csrf_token": csrf_from(page), **data}
        return await http.post(self.url + path, data=form)

    def cookies(self, http: aiohttp.ClientSession) -> str:
        jar = http.cookie_jar.filter_cookies(URL(self.url))
        return "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())

    async def connects(self, cookie_header: str) -> bool:
        sock = socketio.AsyncClient(reconnection=False)
        try:
            await sock.connect(
                self.url, headers={"Cookie": cookie_header}, transports=["websocket"]
            )
        except socketio.exceptions.ConnectionError:
            return False
        await sock.disconnect()
        return True


@pytest.fixture
async def site(overrides: dict[str, Any]) -> AsyncIterator[Site]:
    listener = reserve_listener()
    app = create_app({**overrides, "public_url": url_of(listener), "rate_limits": False})
    async with serve_asgi(build_asgi(app), listener=listener) as url:
        yield Site(url, app)


async def logged_in(site: Site) -> aiohttp.ClientSession:
    http = site.browser()
    await site.post_form(
        http,
        "/auth/register",
        {
            "username": "alice",
            "email": "alice@example.com",
            "password": PASSWORD,
            "password2": PASSWORD,
        },
    )
    await site.post_form(http, "/auth/login", {"login": "alice", "password": PASSWORD})
    return http


async def test_cookie_copied_before_logout_cannot_connect_after_logout(site: Site):
    http = await logged_in(site)
    try:
        stolen = site.cookies(http)
        assert await site.connects(stolen)  # the user's room, while the session lives

        page = await (await http.get(site.url + "/")).text()
        await http.post(site.url + "/auth/logout", data={"csrf_token": csrf_from(page)})

        assert not await site.connects(stolen)
    finally:
        await http.close()


async def test_idle_session_cannot_connect(site: Site):
    http = await logged_in(site)
    try:
        stolen = site.cookies(http)
        idle = site.app.extensions["push2fa"].settings.session_idle_minutes
        async with site.app.extensions["push2fa"].db.session() as db:
            await db.execute(
                update(UserSession).values(last_active_at=utcnow() - timedelta(minutes=idle + 1))
            )
            await db.commit()

        assert not await site.connects(stolen)
    finally:
        await http.close()


async def test_login_cookie_with_a_foreign_session_cookie_cannot_connect(site: Site):
    alice = await logged_in(site)
    mallory = site.browser()
    try:
        await site.post_form(
            mallory,
            "/auth/register",
            {
                "username": "mallory",
                "email": "m@example.com",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
        )
        await site.post_form(mallory, "/auth/login", {"login": "mallory", "password": PASSWORD})
        alices = dict(part.split("=", 1) for part in site.cookies(alice).split("; "))
        mallorys = dict(part.split("=", 1) for part in site.cookies(mallory).split("; "))

        mixed = (
            f"push2fa_session={mallorys['push2fa_session']}; push2fa_auth={alices['push2fa_auth']}"
        )

        assert not await site.connects(mixed)
    finally:
        await alice.close()
        await mallory.close()


# The connect-time decision called directly, in-process (it also kills mutants, see
# docs/mutation.md): rooms come from the signed cookies only.


async def _user(app, name: str, authy_id: int | None = None):

    async with app.extensions["push2fa"].db.session() as db:
        person = User(
            username=name, email=f"{name}@example.com", password_hash="x", authy_id=authy_id
        )
        db.add(person)
        await db.commit()
        return person


async def _challenge(app, user):

    async with app.extensions["push2fa"].db.session() as db:
        return await challenges.create(db, user, challenges.Context("1.2.3.4", "UA"), 60)


def _session_cookie(app, data: Any, secret: str | None = None) -> dict[str, str]:
    """A session cookie as the server signs it (or as a forger with `secret` would)."""
    signer = app
    if secret is not None:
        signer = create_app({"testing": True, "secret_key": secret, "instance_path": "/x"})
    serializer = signer.session_interface.get_signing_serializer(signer)
    return {app.config["SESSION_COOKIE_NAME"]: serializer.dumps(data)}


async def handshake(app: Any, cookies: dict[str, str]) -> tuple[list[str], list[Any]]:
    """The rooms a handshake with these cookies joins, and what it is sent once joined."""
    rooms, state = await make_authorizer(app)(cookies)
    return rooms, await state()


async def test_a_signed_session_cookie_names_its_challenge_room(app):
    challenge = await _challenge(app, await _user(app, "dana", authy_id=5))
    rooms, initial = await handshake(app, _session_cookie(app, {SESSION_KEY: challenge.public_id}))
    assert rooms == [challenge_room(challenge.public_id)]
    assert initial == [(CHALLENGE_EVENT, challenges.event_payload(challenge))]


async def test_a_session_cookie_signed_with_another_key_joins_nothing(app):
    challenge = await _challenge(app, await _user(app, "dana", authy_id=5))
    forged = _session_cookie(
        app, {SESSION_KEY: challenge.public_id}, secret="attacker-secret-key-long-enough-000000"
    )
    assert await handshake(app, forged) == ([], [])


async def test_an_unsigned_session_cookie_joins_nothing(app):
    challenge = await _challenge(app, await _user(app, "dana", authy_id=5))
    name = app.config["SESSION_COOKIE_NAME"]
    signed = _session_cookie(app, {SESSION_KEY: challenge.public_id})[name]
    payload = signed.rsplit(".", 1)[0]
    for unsigned in (payload, payload + ".", payload + ".AAAAAAAAAAAAAAAAAAAAAAAAAAA"):
        assert await handshake(app, {name: unsigned}) == ([], [])


async def test_an_old_session_cookie_joins_nothing(app, monkeypatch):

    challenge = await _challenge(app, await _user(app, "dana", authy_id=5))
    lifetime = app.permanent_session_lifetime.total_seconds()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - lifetime - 60)
    old = _session_cookie(app, {SESSION_KEY: challenge.public_id})
    monkeypatch.setattr(time, "time", real_time)
    assert await handshake(app, old) == ([], [])


@pytest.mark.parametrize("data", [["not", "a", "dict"], "text", {}, {"other": 1}])
async def test_a_session_without_a_challenge_joins_nothing(app, data):

    await _challenge(app, await _user(app, "dana", authy_id=5))
    assert await handshake(app, _session_cookie(app, data)) == ([], [])


async def test_no_cookies_join_nothing(app):

    assert await handshake(app, {}) == ([], [])
    assert await handshake(app, {"push2fa_auth": "", "session": ""}) == ([], [])


async def test_a_logged_in_browser_joins_its_own_user_room_only(app, client):

    await register(client, "dana")
    await register(app.test_client(), "erin")
    response = await login(client, "dana")
    assert response.status_code == 302
    cookies = {cookie.name: cookie.value for cookie in client.cookie_jar}
    rooms, initial = await handshake(app, cookies)
    assert rooms == [user_room(1)]
    assert initial == []
    only_login = {k: v for k, v in cookies.items() if k != app.config["SESSION_COOKIE_NAME"]}
    assert await handshake(app, only_login) == ([], [])


async def test_a_pending_enrolment_is_replayed_on_connect_but_not_a_cancelled_one(app, client):

    await register(client, "dana")
    await login(client, "dana")
    cookies = {cookie.name: cookie.value for cookie in client.cookie_jar}
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        dana = await db.get(User, 1)
        started = await enrollment.start(db, dana, enrollment.ttl(svc.settings))
        payload = enrollment.event_payload(started)
    rooms, initial = await handshake(app, cookies)
    assert rooms == [user_room(1)]
    assert initial == [(ENROLLMENT_EVENT, payload)]
    async with svc.db.session() as db:
        await db.execute(
            update(Enrollment).where(Enrollment.id == started.id).values(status="cancelled")
        )
        await db.commit()
    assert (await handshake(app, cookies))[1] == []


async def test_a_socket_cannot_join_a_room_it_names(site: Site):
    """Mallory, logged in, asks in the handshake for alice's user room and a challenge room:
    she is put in her own room only, and hears nothing published to the ones she named."""
    async with site.browser() as alice_http, site.browser() as mallory_http:
        for name, http in (("alice", alice_http), ("mallory", mallory_http)):
            await site.post_form(
                http,
                "/auth/register",
                {
                    "username": name,
                    "email": f"{name}@example.com",
                    "password": PASSWORD,
                    "password2": PASSWORD,
                },
            )
            await site.post_form(http, "/auth/login", {"login": name, "password": PASSWORD})
        heard: list[Any] = []
        sock = socketio.AsyncClient(reconnection=False)
        sock.on("*", lambda event, data: heard.append((event, data)))
        named = {"room": "user:1", "rooms": ["user:1", "challenge:x"], "challenge": "x"}
        await sock.connect(
            site.url,
            headers={"Cookie": site.cookies(mallory_http)},
            transports=["websocket"],
            auth=named,
        )
        try:
            live = site.app.extensions["push2fa"].realtime
            await live.publish_enrollment(1, {"status": "secret"})
            await live.publish_challenge("x", {"status": "approved"})
            await live.publish_enrollment(2, {"status": "mine"})
            for _ in range(50):
                if heard:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
        finally:
            await sock.disconnect()
    assert heard == [("enrollment", {"status": "mine"})]


@pytest.fixture
async def sticky_site(overrides: dict[str, Any]) -> AsyncIterator[Site]:
    """A site whose balancer pins clients, so long-polling is allowed beside WebSocket."""
    listener = reserve_listener()
    settings = {**overrides, "public_url": url_of(listener), "rate_limits": False}
    app = create_app({**settings, "sticky_sessions": True})
    async with serve_asgi(build_asgi(app), listener=listener) as url:
        yield Site(url, app)


async def test_draining_asks_polling_and_websocket_sockets_alike_to_go(sticky_site: Site):
    http = await logged_in(sticky_site)
    gone: dict[str, asyncio.Event] = {}
    sockets = []
    for transport in ("polling", "websocket"):
        sock = socketio.AsyncClient(reconnection=False)
        gone[transport] = asyncio.Event()
        sock.on("disconnect", gone[transport].set)
        await sock.connect(
            sticky_site.url,
            headers={"Cookie": sticky_site.cookies(http)},
            transports=[transport],
        )
        assert sock.transport() == transport
        sockets.append(sock)

    await sticky_site.app.extensions["push2fa"].realtime.drain()

    for event in gone.values():
        await asyncio.wait_for(event.wait(), 10)  # never heard: the test fails here
    for sock in sockets:
        await sock.disconnect()
    await http.close()


async def test_a_change_landing_while_a_socket_connects_is_not_lost(site: Site):
    """The phone enrols while the enrolment page's socket is connecting: the completion is
    published after the server decided the socket's rooms but before it read their state.
    The page must still hear it (it used to wait for ever: the state was read, then the
    change was published to a room the socket had not joined yet)."""
    http = await logged_in(site)
    realtime = site.app.extensions["push2fa"].realtime
    real = make_authorizer(site.app)
    completed = {"status": "completed", "expires_at": "2099-01-01T00:00:00+00:00"}

    async def enrolled_mid_handshake(cookies: Any) -> Any:
        rooms, state = await real(cookies)

        async def state_after_the_phone_enrolled() -> Any:
            stale = await state()  # read before the news...
            await realtime.publish_enrollment(1, completed)  # ...which lands now
            return stale

        return rooms, state_after_the_phone_enrolled

    realtime.set_authorizer(enrolled_mid_handshake)
    heard: list[Any] = []
    sock = socketio.AsyncClient(reconnection=False)
    sock.on(ENROLLMENT_EVENT, heard.append)
    await sock.connect(site.url, headers={"Cookie": site.cookies(http)}, transports=["websocket"])
    for _ in range(100):
        if completed in heard:
            break
        await asyncio.sleep(0.05)
    await sock.disconnect()
    await http.close()

    assert completed in heard


async def test_a_reconnect_storm_reads_through_a_few_connections_and_leaves_the_rest(app):
    # Forty pages of one login (a restart's reconnect storm) handshake at once. Their
    # reads take at most CONNECT_READS pooled connections at a time, so a webhook or a
    # login arriving meanwhile still finds one free, and no more connections are opened
    # (each kept a thread with its caches for the life of the process).
    challenge = await _challenge(app, await _user(app, "dana", authy_id=5))
    cookies = _session_cookie(app, {SESSION_KEY: challenge.public_id})
    engine = app.extensions["push2fa"].db.engine.sync_engine
    held = {"now": 0, "most": 0}
    storm: set[asyncio.Task[Any]] = set()  # only the handshakes' own checkouts count

    theirs: set[int] = set()  # connection records checked out by a handshake

    def checked_out(_dbapi: Any, record: Any, _proxy: Any) -> None:
        if asyncio.current_task() in storm:
            theirs.add(id(record))
            held["now"] += 1
            held["most"] = max(held["most"], held["now"])

    def checked_in(_dbapi: Any, record: Any) -> None:
        if id(record) in theirs:
            theirs.discard(id(record))
            held["now"] -= 1

    sql_event.listen(engine, "checkout", checked_out)
    sql_event.listen(engine, "checkin", checked_in)
    try:
        authorize = make_authorizer(app)

        async def together(calls: list[Any]) -> list[Any]:
            tasks = [asyncio.ensure_future(call) for call in calls]
            storm.update(tasks)
            return await asyncio.gather(*tasks)

        joined = await together([authorize(cookies) for _ in range(40)])
        initial = await together([state() for _, state in joined])
    finally:
        sql_event.remove(engine, "checkout", checked_out)
        sql_event.remove(engine, "checkin", checked_in)
    assert [rooms for rooms, _ in joined] == [[challenge_room(challenge.public_id)]] * 40
    assert initial == [[(CHALLENGE_EVENT, challenges.event_payload(challenge))]] * 40
    assert 1 < held["most"] <= CONNECT_READS
