"""Signer and verifier agree on every approval request the push service accepts.

Whatever ``details``, ``hidden_details``, message and logos the Authy API lets in, the
callback the push service then signs must pass push2fa's own webhook check, sent as POST
(JSON body) or GET (bracket query), and must carry the values back unchanged. Inputs the
API refuses are outside the promise; everything it accepts is inside.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from push2fa.authy import signature
from push2fa.authy.params import parse_query
from push2fa.pushservice import inputs, payloads
from push2fa.pushservice.callbacks import get_query
from push2fa.pushservice.errors import AuthyErrorAnswer
from push2fa.pushservice.settings import EmulatorSettings
from push2fa.pushservice.store import Device, build_request
from push2fa.web.webhooks import _fields

KEY = "roundtrip-api-key-0123456789"
URL = "https://app.example/webhooks/authy"
NONCE = "1700000000"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SETTINGS = EmulatorSettings(
    api_key=KEY,
    app_name="push2fa",
    app_id="424242",
    callback_url=URL,
    secret_key="s" * 32,
    database_url="sqlite+aiosqlite:///:memory:",  # only payloads are built here: never opened
)
DEVICE = Device(
    id=2102943, authy_id=77, totp_secret=b"x" * 20, registered_at=NOW, registration_ip="1.2.3.4"
)

# Text that stresses the bracket notation and the encoding: brackets, digits, separators,
# percent signs, the characters clients disagree on, and any other Unicode.
TRICKY = st.sampled_from(list("[]0123456789 %+&=;#?/~*.-_aZé\u2603\x00\n") + ["None", "[]"])
text = st.lists(TRICKY | st.characters(), max_size=25).map("".join)
details = st.dictionaries(text, text, max_size=5)
logo = st.fixed_dictionaries(
    {"res": st.sampled_from(["default", "low", "med", "high"]), "url": text}
)
params = st.fixed_dictionaries(
    {"message": text},
    optional={
        "details": details,
        "hidden_details": details,
        "logos": st.lists(logo, max_size=5),
        "seconds_to_expire": st.integers(0, 10**6),
    },
)


def accepted_callback(raw: dict[str, Any]) -> dict[str, Any]:
    """The callback body for an approved request, if the API accepts ``raw``."""
    try:
        inputs.check_unicode(raw)  # what request_params lets through from a JSON body
        new = inputs.new_approval_request(raw)
    except (AuthyErrorAnswer, ValueError):
        assume(False)
        raise
    request = replace(
        build_request(DEVICE.authy_id, new, NOW),
        status="approved",
        processed_at=NOW,
        device_id=DEVICE.id,
        reason="",
    )
    return payloads.approval_callback(SETTINGS, request, DEVICE, NOW)


def transaction(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = body["approval_request"]["transaction"]
    return found


@settings(max_examples=150, deadline=None)
@given(params)
def test_every_accepted_request_gives_a_post_callback_the_webhook_verifies(
    raw: dict[str, Any],
) -> None:
    body = accepted_callback(raw)
    header = signature.sign(KEY, NONCE, "POST", URL, body)

    received = json.loads(json.dumps(body))  # what the webhook reads off the wire
    assert signature.verify(KEY, NONCE, "POST", URL, received, header)
    assert _fields(received)[:3] == (77, body["uuid"], "approved")


@settings(max_examples=150, deadline=None)
@given(params)
@example(raw={"message": "[0]"})  # an index in a value is text, not an array (Hypothesis)
@example(raw={"message": "a", "details": {"list[3]": "x[12]y"}})
def test_every_accepted_request_gives_a_get_callback_the_webhook_verifies(
    raw: dict[str, Any],
) -> None:
    body = accepted_callback(raw)
    header = signature.sign(KEY, NONCE, "GET", URL, body)

    query = get_query(body).encode("ascii")  # the raw query string the webhook sees
    assert signature.verify(KEY, NONCE, "GET", URL, query, header)
    assert _fields(query)[:3] == (77, body["uuid"], "approved")
    carried = transaction(parse_query(query))
    sent = transaction(body)
    assert (carried.get("details") or None) == sent["details"]
    assert (carried.get("hidden_details") or None) == sent["hidden_details"]
    assert carried["message"] == sent["message"]


@pytest.mark.parametrize(
    "details",
    [
        {"Browser]": "Firefox"},
        {"a[b]": "c"},
        {"[": "x"},
        {"5": "a", "b": "c"},
    ],
)
def test_keys_a_get_callback_cannot_carry_are_refused_by_the_api(
    details: dict[str, str],
) -> None:
    # Before the API refused them, these were accepted and push2fa's webhook then
    # rejected the GET callback as forged: the login could never complete.
    with pytest.raises(AuthyErrorAnswer) as caught:
        inputs.new_approval_request({"message": "Log in?", "details": details})
    assert (caught.value.status, caught.value.code) == (400, "60004")
