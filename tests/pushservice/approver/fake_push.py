"""A fake browser push service (FCM / Mozilla autopush / Apple) on a free local port.

It does what the real ones do with what the sender posts: checks the VAPID Authorization
header with py_vapid, and — playing the phone too — decrypts the body with http_ece
(aes128gcm) using the subscription's private key. Each endpoint can be told to answer
201, 404, 410, 413, 429 (with Retry-After) or 403.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDict
from py_vapid import Vapid02


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Phone:
    """One browser's push subscription: its ECDH key and auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth_secret)},
        }


@dataclass
class Delivered:
    path: str
    headers: CIMultiDict[str]
    plaintext: bytes
    vapid_ok: bool
    claims: dict[str, Any]


@dataclass
class FakePushService:
    url: str
    phones: dict[str, Phone] = field(default_factory=dict)
    answers: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    delivered: list[Delivered] = field(default_factory=list)
    attempts: int = 0

    def new_phone(self, answer: int = 201, **headers: str) -> Phone:
        name = b64url(os.urandom(9))
        phone = Phone(f"{self.url}/push/{name}")
        self.phones[name] = phone
        self.answers[name] = (answer, headers)
        return phone

    def answer(self, phone: Phone, status: int, **headers: str) -> None:
        self.answers[phone.endpoint.rsplit("/", 1)[1]] = (status, headers)

    def payloads(self) -> list[Any]:
        return [json.loads(d.plaintext) for d in self.delivered]


@asynccontextmanager
async def fake_push_service() -> AsyncIterator[FakePushService]:
    holder: list[FakePushService] = []

    async def receive(request: web.Request) -> web.Response:
        service = holder[0]
        service.attempts += 1
        name = request.match_info["name"]
        phone = service.phones.get(name)
        if phone is None:
            return web.Response(status=404)
        status, headers = service.answers[name]
        if status != 201:
            return web.Response(status=status, headers=headers)
        body = await request.read()
        authorization = request.headers.get("Authorization", "")
        try:
            vapid_ok = bool(Vapid02.verify(authorization))
        except Exception:
            vapid_ok = False
        token = authorization.split("t=", 1)[-1].split(",", 1)[0]
        claims = jwt.decode(token, options={"verify_signature": False}) if vapid_ok else {}
        plaintext = http_ece.decrypt(
            body,
            private_key=phone.private_key,
            auth_secret=phone.auth_secret,
            version="aes128gcm",
        )
        service.delivered.append(
            Delivered(request.path, CIMultiDict(request.headers), plaintext, vapid_ok, claims)
        )
        return web.Response(status=201, headers={"Location": f"{service.url}/m/{name}"})

    app = web.Application()
    app.router.add_post("/push/{name}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    holder.append(FakePushService(f"http://127.0.0.1:{sock.getsockname()[1]}"))
    try:
        yield holder[0]
    finally:
        await runner.cleanup()
