"""Where the tests read outgoing mail: a real SMTP server on a free port, or the outbox.

Mail is sent from a background task, so readers first wait, with a bounded timeout, for
the app's background tasks to finish or for the SMTP server to hand the message over.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from quart import Quart

MAIL_TIMEOUT = 5.0
LINK_RE = re.compile(r"https?://\S+/auth/reset/\S+")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def parse_mail(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "mail has no text/plain body"
    return str(part.get_content())


def reset_path_in(message: EmailMessage) -> str:
    """The path of the reset link in a mail, to open with the test client."""
    match = LINK_RE.search(body_of(message))
    assert match, f"no reset link in: {body_of(message)!r}"
    return urlsplit(match.group(0)).path


class Recorder:
    """An aiosmtpd handler that hands each received message to the test's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.received: asyncio.Queue[tuple[list[str], EmailMessage]] = asyncio.Queue()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        item = (list(envelope.rcpt_tos), parse_mail(envelope.original_content))
        self.loop.call_soon_threadsafe(self.received.put_nowait, item)
        return "250 Message accepted for delivery"

    async def next_message(self, timeout: float = MAIL_TIMEOUT) -> tuple[list[str], EmailMessage]:
        return await asyncio.wait_for(self.received.get(), timeout)


@asynccontextmanager
async def smtp_server(**smtp_options: Any) -> AsyncIterator[tuple[int, Recorder]]:
    """A real SMTP server on 127.0.0.1 and a free port, for as long as the block runs."""
    recorder = Recorder(asyncio.get_running_loop())
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **smtp_options)
    await asyncio.to_thread(controller.start)
    try:
        yield port, recorder
    finally:
        await asyncio.to_thread(controller.stop)


async def background_done(app: Quart, timeout: float = MAIL_TIMEOUT) -> None:
    """Wait for the app's background tasks (mail is sent from one) to finish."""
    tasks = list(app.background_tasks)
    if tasks:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)


def outbox_messages(instance_path: str | Path) -> list[EmailMessage]:
    outbox = Path(instance_path) / "outbox"
    if not outbox.is_dir():
        return []
    return [parse_mail(path.read_bytes()) for path in sorted(outbox.glob("*.eml"))]


async def sent_mail(app: Quart) -> list[EmailMessage]:
    """Every mail the app has written to its development outbox, once sending finished."""
    await background_done(app)
    return outbox_messages(app.extensions["push2fa"].settings.instance_path)
