"""Delivery of signed OneTouch callbacks to the app's webhook, as Authy does it.

The signature is computed with the project's one implementation of spec 2.3 over the
configured callback URL without its query, so a webhook that verifies real Authy callbacks
verifies these too. A refused connection, a timeout or a 5xx is retried a couple of times
with a short backoff: the app must cope with duplicates anyway, and a lost answer would
leave a login waiting until it expires.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
from yarl import URL

from push2fa.authy import signature

from .settings import EmulatorSettings

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 0.6)


class CallbackSender:
    """Owns the one HTTP session used for callbacks; open at startup, close at shutdown."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._settings.callback_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, body: dict[str, Any]) -> int | None:
        """Deliver ``body``; return the last HTTP status received, or None if none was."""
        if self._session is None:
            raise RuntimeError("CallbackSender.send() before open(): is lifespan running?")
        status: int | None = None
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            if attempt:
                await asyncio.sleep(delay)
            status = await self._attempt(self._session, body)
            if status is not None and status < 500:
                return status
        return status

    async def _attempt(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> int | None:
        settings = self._settings
        method = settings.callback_method
        nonce = str(int(time.time()))
        headers = {
            "X-Authy-Signature": signature.sign(
                settings.api_key, nonce, method, settings.callback_url, body
            ),
            "X-Authy-Signature-Nonce": nonce,
        }
        try:
            if method == "POST":
                headers["Content-Type"] = "application/json"
                response = session.post(
                    settings.callback_url, data=json.dumps(body), headers=headers
                )
            else:
                response = session.get(_get_url(settings.callback_url, body), headers=headers)
            async with response as answer:
                await answer.read()
                log.info("callback %s %s -> %s", method, body.get("uuid"), answer.status)
                return answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("callback %s %s failed: %r", method, body.get("uuid"), exc)
            return None


def get_query(body: dict[str, Any]) -> str:
    """The query string of a GET callback, in the order real Authy sends it.

    Authy's GET callbacks (authy-java's captured vector) list the bracket pairs sorted by
    key with array indices collapsed to ``[]`` (arrays keep their element order), as in the
    canonical parameter string that is signed (spec 2.3 steps 1-5). Only the keys are
    collapsed: a message or detail that reads "[0]" arrives as "[0]", and the signature
    still matches, because both ends collapse the values alike when they canonicalise.
    """
    return "&".join(_collapse_key(pair) for pair in signature.sorted_pairs(body))


def _collapse_key(pair: str) -> str:
    key, _, value = pair.partition("=")  # form_encode left no "=" inside the key
    return f"{signature.collapse_indices(key)}={value}"


def _get_url(callback_url: str, body: dict[str, Any]) -> URL:
    """The callback URL with the body as a bracket query, sent byte for byte as built."""
    base = URL(callback_url).with_fragment(None)
    separator = "&" if base.raw_query_string else "?"
    return URL(f"{base}{separator}{get_query(body)}", encoded=True)
