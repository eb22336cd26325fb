"""Socket.IO reserved event names sent by a client are ignored.

python-socketio dispatches a client's event by name, so an event called "connect" reached
the server's connect handler with the client's data as the handshake environ: a socket
could join the rooms of any cookie it names. "disconnect" ran the disconnect handler on a
socket that stays open. Over a real server and a real python-socketio client.
"""

from __future__ import annotations

import asyncio
from typing import Any

from push2fa.realtime.rooms import user_room
from tests.web.twofa.conftest import Browser, Site


async def logged_in(browsers: Any, name: str) -> Browser:
    browser = browsers()
    await browser.register(name)
    await browser.login(name)
    logged: Browser = browser
    return logged


async def user_id(site: Site, name: str) -> int:
    from sqlalchemy import select

    from push2fa.models import User

    async with site.app.extensions["push2fa"].db.session() as db:
        user_id: int = (await db.execute(select(User.id).where(User.username == name))).scalar_one()
        return user_id


async def test_a_client_event_named_connect_cannot_join_another_sessions_rooms(site, browsers):
    alice = await logged_in(browsers, "alice")
    mallory = await logged_in(browsers, "mallory")
    sock = await mallory.connect()
    server = site.app.extensions["push2fa"].realtime
    sid = sock.get_sid()
    rooms_before = set(server.server.rooms(sid))

    # alice's cookie header stands for any cookie the attacker holds but is not connected
    # with; the handler must not run again whatever it says.
    await sock.emit("connect", {"HTTP_COOKIE": alice.cookie_header()})
    await sock.emit("connect", "not even an environ")
    await asyncio.sleep(0.3)
    await server.publish_enrollment(await user_id(site, "alice"), {"status": "completed"})
    await asyncio.sleep(0.3)

    assert set(server.server.rooms(sid)) == rooms_before
    assert user_room(await user_id(site, "alice")) not in rooms_before
    received = []
    while not mallory.events.empty():
        received.append(mallory.events.get_nowait())
    assert ("enrollment", {"status": "completed"}) not in received
    assert sock.connected


async def test_a_client_event_named_disconnect_does_not_run_the_disconnect_handler(site, browsers):
    mallory = await logged_in(browsers, "mallory")
    sock = await mallory.connect()
    server = site.app.extensions["push2fa"].realtime
    sid = sock.get_sid()
    server._sent[sid] = "pending"  # what the server last sent this socket

    await sock.emit("disconnect", "client namespace disconnect")
    await asyncio.sleep(0.3)

    assert server._sent.get(sid) == "pending"
    assert sock.connected
    assert sid in dict(server.server.manager.get_participants("/", None))

    await sock.disconnect()
    await asyncio.sleep(0.3)
    assert sid not in server._sent  # the real disconnect still runs the handler
