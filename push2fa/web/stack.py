"""The ASGI stack the server serves: Socket.IO around the Quart app, the in-process push
service under `/_emulator`, proxy-header handling when proxies are trusted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, cast

from dotenv import find_dotenv, load_dotenv
from quart import Quart

from push2fa import services
from push2fa.realtime.hub import Realtime, wrap
from push2fa.web.app import create_app
from push2fa.web.urls import TrustedProxies

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]

EMULATOR_PREFIX = "/_emulator"


class PrefixDispatcher:
    """Send `/_emulator...` to the emulator and the rest to the app; fan lifespan out to both."""

    def __init__(self, default: ASGIApp, prefixed: dict[str, ASGIApp]) -> None:
        self.default = default
        self.prefixed = prefixed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path: str = scope.get("path", "")
        for prefix, app in self.prefixed.items():
            if path == prefix or path.startswith(prefix + "/"):
                await app(scope, receive, send)
                return
        await self.default(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        children = [_LifespanChild(app, scope) for app in (self.default, *self.prefixed.values())]
        message = await receive()  # lifespan.startup
        started = await asyncio.gather(*(c.step(message, ".startup") for c in children))
        if not all(started):
            # Stop the children that did start (the emulator's HTTP session, its timers).
            stop = {"type": "lifespan.shutdown"}
            up = [child for child, ok in zip(children, started, strict=True) if ok]
            await asyncio.gather(*(child.step(stop, ".shutdown") for child in up))
            await send({"type": "lifespan.startup.failed", "message": "a child app failed"})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()  # lifespan.shutdown
        ok = all(await asyncio.gather(*(c.step(message, ".shutdown") for c in children)))
        await send({"type": "lifespan.shutdown.complete" if ok else "lifespan.shutdown.failed"})


class _LifespanChild:
    """Drives one child app's lifespan protocol from the parent's messages."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task = asyncio.create_task(app(dict(scope), self.inbox.get, self.outbox.put))

    async def step(self, message: Message, phase: str) -> bool:
        await self.inbox.put(message)
        getter = asyncio.ensure_future(self.outbox.get())
        done, _ = await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            return phase == ".shutdown"  # an app that simply returned has nothing to stop
        reply = getter.result()
        return str(reply.get("type", "")).endswith(phase + ".complete")


def build_asgi(app: Quart) -> ASGIApp:
    """Wrap a configured Quart app into the full ASGI application."""
    svc: services.Services = app.extensions["push2fa"]
    settings = svc.settings
    if not isinstance(svc.realtime, Realtime):
        raise TypeError("the app's realtime server must be a push2fa.realtime.hub.Realtime")
    stack: ASGIApp = wrap(app, svc.realtime)
    if settings.emulator_in_process:
        from push2fa.web.own_push_service import in_process_emulator

        stack = PrefixDispatcher(stack, {EMULATOR_PREFIX: in_process_emulator(settings)})
    if settings.trusted_proxies:
        stack = cast(ASGIApp, TrustedProxies(stack, settings.trusted_proxies))
    return stack


def from_environment() -> tuple[Quart, ASGIApp]:
    """The app and its ASGI stack, configured from the environment (and `.env`): what
    `hypercorn push2fa.asgi:app` serves and what each `push2fa serve` worker builds."""
    load_dotenv(find_dotenv(usecwd=True), override=False)
    application = create_app()
    return application, build_asgi(application)
