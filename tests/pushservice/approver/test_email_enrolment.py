"""Users an app created with ``users/new`` get a phone: the Approver's e-mail code.

The whole story runs as an app written for api.authy.com runs it, with the official
``authy`` client (PyPI 2.2.6): ``users.create``, then the person proves the e-mail in the
Approver (over HTTP, as its page does, with passkeys made by Chromium's virtual
authenticator), then ``one_touch.send_request``, an approval signed on the phone, the
callback checked with the client's ``validate_one_touch_signature``, and ``tokens.verify``
with the code the Approver shows. Mail goes through a real SMTP server. Then every attack
on the code and the claim it wins, each a test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from authy.api import AuthyApiClient
from sqlalchemy import select, update

from push2fa.config import load_settings
from push2fa.db import make_engine
from push2fa.mail import send_mail
from push2fa.pushservice import tables
from push2fa.pushservice.approver.email_codes import claim_hash
from push2fa.pushservice.errors import ClaimRejected
from push2fa.pushservice.sql_store import SqlStore
from tests.conftest import TEST_SECRET
from tests.pushservice.approver.conftest import (
    CREATE_JS,
    GET_JS,
    ApproverSite,
    VirtualAuthenticator,
)
from tests.pushservice.conftest import API_KEY, Receiver
from tests.web.auth.mailbox import Recorder, body_of, smtp_server

T = TypeVar("T")
JSON = {"Content-Type": "application/json"}
CODE_IN_MAIL = re.compile(r"\b([0-9]{4}) ([0-9]{4})\b")
WRONG = "That code is wrong or has expired"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[int, Recorder]]:
    async with smtp_server(enable_SMTPUTF8=True) as server:
        yield server


@pytest.fixture
def mailbox(smtp: tuple[int, Recorder]) -> Recorder:
    return smtp[1]


@pytest.fixture
def approver_extra(smtp: tuple[int, Recorder], tmp_path: Path) -> dict[str, Any]:
    """The Approver sends its codes with push2fa's own mail module, to the test SMTP server."""
    mail = load_settings(
        environ={},
        overrides={
            "secret_key": TEST_SECRET,
            "instance_path": str(tmp_path / "mail"),
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[0],
            "smtp_starttls": False,
        },
    )
    return {"send_mail": partial(send_mail, mail)}


@pytest.fixture
def official(approver_site: ApproverSite) -> AuthyApiClient:
    return AuthyApiClient(API_KEY, api_uri=f"{approver_site.url}/_emulator")


async def off_loop(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(call, *args, **kwargs)


async def create_user(official: AuthyApiClient, email: str, cellphone: str) -> int:
    user = await off_loop(official.users.create, email, cellphone, 1)
    assert user.ok(), user.errors()
    authy_id: int = user.id
    return authy_id


# --- the phone: the Approver's API over HTTP, passkeys from Chromium ---------------------


@dataclass
class Phone:
    """What the Approver page does, step by step: its API calls over HTTP, its passkeys
    made and used by a virtual authenticator in a page of the Approver's origin."""

    site: ApproverSite
    page: Any
    authenticator: VirtualAuthenticator

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.site.http.post(
            f"{self.site.app_url}api/{path}", json=body, headers=JSON
        ) as response:
            return response.status, await response.json(content_type=None)

    async def enrol(self, grant: dict[str, Any]) -> tuple[int, Any]:
        status, options = await self.post("enrol/options", grant)
        if status != 200:
            return status, options
        credential = await self.page.evaluate(CREATE_JS, options["publicKey"])
        body = {**grant, "ceremony": options["ceremony"], "credential": credential}
        return await self.post("enrol", {**body, "subscription": None, "name": "Pixel"})

    async def approve(self, credential: str, uuid: str) -> tuple[int, Any]:
        status, options = await self.post(f"requests/{uuid}/options", {"credential": credential})
        assert status == 200, options
        # The record the page builds: sorted keys, no spaces; its SHA-256 is the challenge.
        record = json.dumps(
            {
                "decision": "approve",
                "exp": options["exp"],
                "nonce": options["nonce"],
                "number": None,
                "purpose": "push2fa-approver-decision",
                "request": options["request"],
                "v": 1,
            },
            separators=(",", ":"),
        )
        digest = hashlib.sha256(record.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assertion = await self.page.evaluate(
            GET_JS, {**options["publicKey"], "challenge": challenge}
        )
        body = {"ceremony": options["ceremony"], "decision": "approve", "assertion": assertion}
        return await self.post(f"requests/{uuid}/decision", body)

    async def show_code(self, credential: str) -> tuple[int, Any]:
        status, options = await self.post("code/options", {"credential": credential})
        if status != 200:
            return status, options
        assertion = await self.page.evaluate(GET_JS, options["publicKey"])
        return await self.post("code", {"ceremony": options["ceremony"], "assertion": assertion})


@pytest.fixture
async def phone(open_page: Any, approver_site: ApproverSite) -> Phone:
    page = await open_page("phone")
    authenticator = await VirtualAuthenticator.attach(page)
    await page.goto(f"{approver_site.app_url}offline")
    return Phone(approver_site, page, authenticator)


async def ask_code(site: ApproverSite, email: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with site.http.post(
        f"{site.app_url}api/email/code", json={"email": email}, headers=JSON
    ) as response:
        return response.status, await response.json(content_type=None), response


async def verify(site: ApproverSite, email: Any, code: Any) -> tuple[int, Any]:
    async with site.http.post(
        f"{site.app_url}api/email/verify", json={"email": email, "code": code}, headers=JSON
    ) as response:
        return response.status, await response.json(content_type=None)


async def mailed_code(mailbox: Recorder, to: str) -> str:
    recipients, message = await mailbox.next_message()
    assert recipients == [to] and message["To"] == to
    match = CODE_IN_MAIL.search(body_of(message))
    assert match, body_of(message)
    assert match.group(1) + " " + match.group(2) in message["Subject"]
    return match.group(1) + match.group(2)


async def code_for(site: ApproverSite, mailbox: Recorder, email: str, to: str = "") -> str:
    status, body, _ = await ask_code(site, email)
    assert status == 202, body
    return await mailed_code(mailbox, to or email)


async def claim_for(site: ApproverSite, mailbox: Recorder, email: str) -> tuple[str, list[Any]]:
    code = await code_for(site, mailbox, email)
    status, body = await verify(site, email, code)
    assert status == 200, body
    return body["claim"], body["accounts"]


async def devices_of(site: ApproverSite, authy_id: int) -> list[Any]:
    async with site.http.get(
        f"{site.url}/_emulator/protected/json/users/{authy_id}/devices",
        headers={"X-Authy-API-Key": API_KEY},
    ) as response:
        devices: list[Any] = (await response.json())["devices"]
        return devices


class Database:
    """Direct reads and writes of the push service's tables: a clock turned forward."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    async def codes(self) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(tables.email_codes))).mappings().all())

    async def expire_codes(self) -> None:
        past = datetime.now(UTC) - timedelta(seconds=1)
        async with self.engine.begin() as conn:
            await conn.execute(update(tables.email_codes).values(expires_at=past))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.engine.dispose()


# --- the story, with the official client -----------------------------------------------


@pytest.mark.parametrize("callback_method", ["POST", "GET"])
async def test_a_users_new_user_adds_the_approver_by_email_then_push_and_totp_work(
    official: AuthyApiClient,
    approver_site: ApproverSite,
    phone: Phone,
    mailbox: Recorder,
    receiver: Receiver,
    callback_method: str,
) -> None:
    authy_id = await create_user(official, "ann@example.com", "555-012-3456")
    before = await off_loop(official.one_touch.send_request, authy_id, "Log in?")
    assert not before.ok() and before["error_code"] == "60050"  # no device yet: the gap

    claim, accounts = await claim_for(approver_site, mailbox, "ann@example.com")
    assert [a["id"] for a in accounts] == [authy_id]
    assert accounts[0]["phone"] == "+1 …56"
    status, enrolled = await phone.enrol({"claim": claim, "account": authy_id})
    assert status == 201, enrolled
    assert enrolled["authy_id"] == authy_id and enrolled["account"] == "ann@example.com"
    _, notice = await mailbox.next_message()  # the address hears that a phone was added
    assert "a phone was added" in notice["Subject"]
    user = await off_loop(official.users.status, authy_id)
    assert user["status"]["registered"] is True

    sent = await off_loop(
        official.one_touch.send_request,
        authy_id,
        "Log in to Example?",
        seconds_to_expire=120,
        details={"Username": "ann"},
    )
    assert sent.ok(), sent.errors()
    status, decided = await phone.approve(enrolled["credential"], sent.get_uuid())
    assert (status, decided) == (200, {"status": "approved"})
    approved = await off_loop(official.one_touch.get_approval_status, sent.get_uuid())
    assert approved["approval_request"]["status"] == "approved"

    received = await receiver.next_request()
    assert received.method == callback_method
    headers = {name.lower(): value for name, value in received.headers.items()}
    signature, nonce = headers["x-authy-signature"], headers["x-authy-signature-nonce"]
    if callback_method == "POST":
        params = json.loads(received.body)
    else:
        from push2fa.authy.params import parse_query

        params = parse_query(received.query_string)
    validate = official.one_touch.validate_one_touch_signature
    assert validate(signature, nonce, callback_method, receiver.callback_url, params)
    assert params["approval_request"]["transaction"]["details"] == {"Username": "ann"}
    params["status"] = "denied"
    assert not validate(signature, nonce, callback_method, receiver.callback_url, params)

    status, shown = await phone.show_code(enrolled["credential"])
    assert status == 200, shown
    assert re.fullmatch(r"[0-9]{7}", shown["code"]) and 1 <= shown["seconds_left"] <= 30
    token = await off_loop(official.tokens.verify, authy_id, shown["code"])
    assert token.ok(), token.errors()
    reused = await off_loop(official.tokens.verify, authy_id, shown["code"])
    assert not reused.ok() and reused["error_code"] == "60019"


async def test_several_users_of_one_email_are_offered_and_the_code_adds_one_of_them(
    official: AuthyApiClient, approver_site: ApproverSite, phone: Phone, mailbox: Recorder
) -> None:
    first = await create_user(official, "family@example.com", "555-010-0001")
    second = await create_user(official, "family@example.com", "555-010-0002")
    claim, accounts = await claim_for(approver_site, mailbox, "family@example.com")
    assert [(a["id"], a["phone"]) for a in accounts] == [(first, "+1 …01"), (second, "+1 …02")]
    status, body = await phone.enrol({"claim": claim, "account": second})
    assert status == 201, body
    status, body = await phone.enrol({"claim": claim, "account": first})
    assert status == 409, body  # one code, one phone for one account
    assert len(await devices_of(approver_site, second)) == 1
    assert await devices_of(approver_site, first) == []


async def test_a_code_to_show_needs_a_passkey_check_each_time(
    official: AuthyApiClient, approver_site: ApproverSite, phone: Phone, mailbox: Recorder
) -> None:
    authy_id = await create_user(official, "ann@example.com", "555-012-3456")
    claim, _ = await claim_for(approver_site, mailbox, "ann@example.com")
    _, enrolled = await phone.enrol({"claim": claim, "account": authy_id})
    status, options = await phone.post("code/options", {"credential": enrolled["credential"]})
    assert status == 200
    assert options["publicKey"]["userVerification"] == "required"
    assertion = await phone.page.evaluate(GET_JS, options["publicKey"])
    body = {"ceremony": options["ceremony"], "assertion": assertion}
    status, shown = await phone.post("code", body)
    assert status == 200 and "code" in shown
    status, replayed = await phone.post("code", body)
    assert status == 409, replayed  # the nonce is spent: a captured answer shows nothing
    await phone.authenticator.override(isBadUV=True)  # answers without user verification
    status, refused = await phone.show_code(enrolled["credential"])
    assert status == 403 and "code" not in refused, refused
    for credential in ("unknown", 5, None, "x" * 5000):
        status, refused = await phone.post("code/options", {"credential": credential})
        assert status in (400, 403), refused


# --- attacks on the code --------------------------------------------------------------


async def test_brute_force_burns_the_code_after_the_allowed_tries(
    official: AuthyApiClient, approver_site: ApproverSite, mailbox: Recorder
) -> None:
    await create_user(official, "ann@example.com", "555-012-3456")
    code = await code_for(approver_site, mailbox, "ann@example.com")
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(approver_site.approver.email_code_tries):
        status, body = await verify(approver_site, "ann@example.com", wrong)
        assert status == 400 and WRONG in body["error"]
    status, body = await verify(approver_site, "ann@example.com", code)
    assert status == 400 and WRONG in body["error"]  # burnt: even the right code fails


async def test_parallel_guesses_are_counted_before_they_are_compared(
    official: AuthyApiClient, approver_site: ApproverSite, mailbox: Recorder, db: Database
) -> None:
    await create_user(official, "ann@example.com", "555-012-3456")
    code = await code_for(approver_site, mailbox, "ann@example.com")
    wrong = [f"{(int(code) + n) % 10**8:08d}" for n in range(1, 10)]
    answers = await asyncio.gather(*(verify(approver_site, "ann@example.com", w) for w in wrong))
    assert all(status == 400 for status, _ in answers)
    [row] = await db.codes()
    assert row["tries"] == approver_site.approver.email_code_tries
    assert code not in json.dumps(dict(row), default=str)  # kept as a keyed hash only
    status, _ = await verify(approver_site, "ann@example.com", code)
    assert status == 400


async def test_ten_phones_racing_one_code_win_one_claim(
    official: AuthyApiClient, approver_site: ApproverSite, mailbox: Recorder
) -> None:
    await create_user(official, "ann@example.com", "555-012-3456")
    code = await code_for(approver_site, mailbox, "ann@example.com")
    answers = await asyncio.gather(
        *(verify(approver_site, "ann@example.com", code) for _ in range(10))
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(200) == 1, answers
    assert all(status in (400, 409) for status in statuses if status != 200)


async def test_ten_phones_racing_one_claim_add_one_device(
    official: AuthyApiClient,
    approver_site: ApproverSite,
    phone: Phone,
    mailbox: Recorder,
) -> None:
    authy_id = await create_user(official, "ann@example.com", "555-012-3456")
    claim, _ = await claim_for(approver_site, mailbox, "ann@example.com")
    grant = {"claim": claim, "account": authy_id}
    bodies = []
    for _ in range(10):  # ten ceremonies and passkeys, all ready before the race
        status, options = await phone.post("enrol/options", grant)
        assert status == 200, options
        credential = await phone.page.evaluate(CREATE_JS, options["publicKey"])
        bodies.append({**grant, "ceremony": options["ceremony"], "credential": credential})
    answers = await asyncio.gather(*(phone.post("enrol", body) for body in bodies))
    statuses = [status for status, _ in answers]
    assert statuses.count(201) == 1, answers
    assert all(400 <= status < 500 for status in statuses if status != 201)
    assert len(await devices_of(approver_site, authy_id)) == 1


async def test_a_used_code_and_a_used_claim_are_refused(
    official: AuthyApiClient, approver_site: ApproverSite, phone: Phone, mailbox: Recorder
) -> None:
    authy_id = await create_user(official, "ann@example.com", "555-012-3456")
    code = await code_for(approver_site, mailbox, "ann@example.com")
    status, won = await verify(approver_site, "ann@example.com", code)
    assert status == 200
    status, body = await verify(approver_site, "ann@example.com", code)
    assert status == 400 and WRONG in body["error"]  # replayed code
    grant = {"claim": won["claim"], "account": authy_id}
    status, _ = await phone.enrol(grant)
    assert status == 201
    status, body = await phone.enrol(grant)
    assert status == 409, body  # replayed claim
    assert len(await devices_of(approver_site, authy_id)) == 1


async def test_an_expired_code_and_an_expired_claim_are_refused(
    official: AuthyApiClient,
    approver_site: ApproverSite,
    phone: Phone,
    mailbox: Recorder,
    db: Database,
) -> None:
    authy_id = await create_user(official, "ann@example.com", "555-012-3456")
    code = await code_for(approver_site, mailbox, "ann@example.com")
    await db.expire_codes()
    status, body = await verify(approver_site, "ann@example.com", code)
    assert status == 400 and WRONG in body["error"]

    claim, _ = await claim_for(approver_site, mailbox, "ann@example.com")
    grant = {"claim": claim, "account": authy_id}
    status, options = await phone.post("enrol/options", grant)
    assert status == 200
    credential = await phone.page.evaluate(CREATE_JS, options["publicKey"])
    await db.expire_codes()
    status, body = await phone.post(
        "enrol", {**grant, "ceremony": options["ceremony"], "credential": credential}
    )
    assert 400 <= status < 500, body
    assert await devices_of(approver_site, authy_id) == []


async def test_asking_again_ends_the_earlier_code(
    official: AuthyApiClient, approver_site: ApproverSite, mailbox: Recorder
) -> None:
    await create_user(official, "ann@example.com", "555-012-3456")
    first = await code_for(approver_site, mailbox, "ann@example.com")
    second = await code_for(approver_site, mailbox, "ann@example.com")
    status, _ = await verify(approver_site, "ann@example.com", first)
    assert status == 400 or first == second
    status, _ = await verify(approver_site, "ann@example.com", second)
    assert status == 200


async def test_the_code_of_one_email_enrols_no_other(
    official: AuthyApiClient,
    approver_site: ApproverSite,
    phone: Phone,
    mailbox: Recorder,
    database_url: str,
) -> None:
    ann = await create_user(official, "ann@example.com", "555-012-3456")
    bob = await create_user(official, "bob@example.com", "555-012-9999")
    ann_code = await code_for(approver_site, mailbox, "ann@example.com")
    await code_for(approver_site, mailbox, "bob@example.com")  # Bob has a live code too
    status, body = await verify(approver_site, "bob@example.com", ann_code)
    assert status == 400 and WRONG in body["error"]

    status, won = await verify(approver_site, "ann@example.com", ann_code)
    assert status == 200 and [a["id"] for a in won["accounts"]] == [ann]
    status, body = await phone.enrol({"claim": won["claim"], "account": bob})
    assert status == 409, body
    # The store refuses it as well, in its one statement, whatever the caller checked.
    store = SqlStore(database_url)
    try:
        with pytest.raises(ClaimRejected):
            await store.register_device_by_claim(
                claim_hash(won["claim"]), bob, "203.0.113.9", datetime.now(UTC)
            )
    finally:
        await store.close()
    assert await devices_of(approver_site, bob) == []
    status, body = await phone.enrol({"claim": won["claim"], "account": ann})
    assert status == 201, body  # the claim was not spent by the refused tries


# --- enumeration -----------------------------------------------------------------------


async def test_asking_for_a_code_answers_alike_for_unknown_addresses_and_mails_nothing(
    official: AuthyApiClient, approver_site: ApproverSite, mailbox: Recorder, db: Database
) -> None:
    await create_user(official, "ann@example.com", "555-012-3456")
    status_a, body_a, known = await ask_code(approver_site, "ann@example.com")
    status_b, body_b, unknown = await ask_code(approver_site, "nobody@example.com")
    assert (status_a, body_a) == (status_b, body_b) == (202, body_a)
    skip = {"date", "ratelimit-reset"}
    assert {k: v for k, v in known.headers.items() if k.lower() not in skip} == {
        k: v for k, v in unknown.headers.items() if k.lower() not in skip
    }
    await approver_site.service.drain(5.0)
    recipients, _ = await mailbox.next_message()
    assert recipients == ["ann@example.com"]
    assert mailbox.received.empty()  # nothing for the unknown address
    assert {row["email_key"] for row in await db.codes()} == {"ann@example.com"}
    status, body = await verify(approver_site, "nobody@example.com", "12345678")
    assert status == 400 and WRONG in body["error"]  # the same answer as a wrong code


async def test_the_answer_does_not_wait_for_the_lookup_or_the_mail(
    official: AuthyApiClient, approver_site: ApproverSite, smtp: tuple[int, Recorder]
) -> None:
    """Whatever differs between a known and an unknown address runs after the answer: here
    the mail server never greets, and the answer for a known address still comes at once
    (its mail is still being sent when the answer is read)."""
    await create_user(official, "ann@example.com", "555-012-3456")
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)  # accepts connections into its backlog, never says a word
    mail = load_settings(
        environ={},
        overrides={
            "secret_key": TEST_SECRET,
            "instance_path": "/nonexistent",
            "smtp_host": "127.0.0.1",
            "smtp_port": mute.getsockname()[1],
            "smtp_starttls": False,
        },
    )
    approver_site.service.email.send_mail = partial(send_mail, mail)
    try:
        status, body, _ = await ask_code(approver_site, "ann@example.com")
        assert status == 202, body
        assert approver_site.service.busy  # the mail is still on its way
    finally:
        mute.close()
        await approver_site.service.drain(15.0)


# --- the address as typed ----------------------------------------------------------------


async def test_the_address_is_matched_ignoring_ascii_case_and_mailed_as_registered(
    official: AuthyApiClient, approver_site: ApproverSite, phone: Phone, mailbox: Recorder
) -> None:
    authy_id = await create_user(official, "Ann.Lee@Example.COM", "555-012-3456")
    code = await code_for(approver_site, mailbox, " ann.lee@example.com ", "Ann.Lee@Example.COM")
    status, won = await verify(approver_site, "ANN.LEE@EXAMPLE.com", code)
    assert status == 200, won
    status, body = await phone.enrol({"claim": won["claim"], "account": authy_id})
    assert status == 201, body


async def test_non_ascii_letters_are_not_folded_into_another_address(
    official: AuthyApiClient, approver_site: ApproverSite, mailbox: Recorder, db: Database
) -> None:
    await create_user(official, "josé@example.com", "555-012-3456")
    status, _, _ = await ask_code(approver_site, "JOSÉ@example.com")
    assert status == 202
    await approver_site.service.drain(5.0)
    assert mailbox.received.empty() and await db.codes() == []
    await code_for(approver_site, mailbox, "JOSé@EXAMPLE.com", "josé@example.com")


# --- limits and bad input ------------------------------------------------------------------


async def test_code_requests_are_limited_per_address_and_per_client(
    approver_site: ApproverSite,
) -> None:
    for _ in range(3):
        status, _, _ = await ask_code(approver_site, "target@example.com")
        assert status == 202
    status, body, response = await ask_code(approver_site, "TARGET@example.com")
    assert status == 429 and "Too many tries" in body["error"]
    assert int(response.headers["Retry-After"]) > 0
    for n in range(7):  # other addresses, one client: 3 + 7 = 10 an hour (refused ones
        # do not count)
        status, _, _ = await ask_code(approver_site, f"other{n}@example.com")
        assert status == 202
    status, _, _ = await ask_code(approver_site, "fresh@example.com")
    assert status == 429
    await approver_site.service.drain(5.0)


async def test_code_tries_are_limited_per_address(approver_site: ApproverSite) -> None:
    for _ in range(10):
        status, _ = await verify(approver_site, "target@example.com", "12345678")
        assert status == 400
    status, body = await verify(approver_site, "Target@Example.com", "12345678")
    assert status == 429 and "Too many tries" in body["error"]


BAD_CODE_REQUESTS: list[Any] = [
    {},
    {"email": None},
    {"email": 5},
    {"email": ["ann@example.com"]},
    {"email": {"$ne": ""}},
    {"email": "not-an-address"},
    {"email": "a" * 250 + "@example.com"},
    {"email": "ann\x00@example.com"},
    {"email": "ann\u202e@example.com"},
    {"email": "\ud800@example.com"},
    [],
    "ann@example.com",
]


@pytest.mark.parametrize("body", BAD_CODE_REQUESTS)
async def test_a_bad_code_request_is_a_clear_4xx(approver_site: ApproverSite, body: Any) -> None:
    async with approver_site.http.post(
        f"{approver_site.app_url}api/email/code",
        data=json.dumps(body),
        headers=JSON,
    ) as response:
        assert 400 <= response.status < 500, await response.text()
        assert "error" in await response.json(content_type=None)


BAD_TRIES: list[Any] = [
    {"email": "ann@example.com"},
    {"email": "ann@example.com", "code": None},
    {"email": "ann@example.com", "code": 12345678},
    {"email": "ann@example.com", "code": "1234567"},
    {"email": "ann@example.com", "code": "123456789"},
    {"email": "ann@example.com", "code": "1234abcd"},
    {"email": "ann@example.com", "code": "１２３４５６７８"},
    {"email": "ann@example.com", "code": ["12345678"]},
    {"email": "ann@example.com", "code": "1" * 5000},
    {"email": "ann\x00@example.com", "code": "12345678"},
    {"email": None, "code": "12345678"},
]


@pytest.mark.parametrize("body", BAD_TRIES)
async def test_a_bad_code_try_is_a_clear_4xx(
    official: AuthyApiClient, approver_site: ApproverSite, mailbox: Recorder, body: Any
) -> None:
    await create_user(official, "ann@example.com", "555-012-3456")
    code = await code_for(approver_site, mailbox, "ann@example.com")
    async with approver_site.http.post(
        f"{approver_site.app_url}api/email/verify", data=json.dumps(body), headers=JSON
    ) as response:
        assert 400 <= response.status < 500, await response.text()
    status, _ = await verify(approver_site, "ann@example.com", code)
    assert status == 200  # malformed input spent no try


BAD_GRANTS: list[Any] = [
    {"claim": None, "account": 1},
    {"claim": 5, "account": 1},
    {"claim": "x" * 5000, "account": 1},
    {"claim": "unknown-claim", "account": 1},
    {"claim": "unknown-claim", "account": "abc"},
    {"claim": "unknown-claim", "account": True},
    {"claim": "unknown-claim", "account": -1},
    {"claim": "unknown-claim", "account": 10**30},
    {"claim": "unknown-claim", "account": [1]},
    {"claim": "unknown\x00", "account": "1"},
]


@pytest.mark.parametrize("grant", BAD_GRANTS)
async def test_a_bad_claim_is_a_clear_4xx_and_enrols_nothing(
    approver_site: ApproverSite, grant: Any
) -> None:
    for path, extra in (("enrol/options", {}), ("enrol", {"ceremony": "x", "credential": {}})):
        async with approver_site.http.post(
            f"{approver_site.app_url}api/{path}", data=json.dumps({**grant, **extra}), headers=JSON
        ) as response:
            assert 400 <= response.status < 500, await response.text()


async def test_users_new_refuses_an_email_with_a_control_character(
    official: AuthyApiClient,
) -> None:
    user = await off_loop(official.users.create, "ann\x00@example.com", "555-012-3456", 1)
    assert not user.ok() and user.response.status_code == 400
    assert user.errors()["email"] == "is invalid"


# --- the same, by a person in the Approver page ------------------------------------------


async def test_a_person_adds_the_approver_by_email_approves_and_reads_a_code(
    open_page: Any,
    official: AuthyApiClient,
    approver_site: ApproverSite,
    mailbox: Recorder,
    receiver: Receiver,
    page_watch: Any,
    screenshot: Any,
) -> None:
    authy_id = await create_user(official, "ann@example.com", "555-012-3456")
    page = await open_page("phone", width=390, height=844)
    await VirtualAuthenticator.attach(page)
    await page.goto(approver_site.app_url)
    await page.get_by_role("button", name="An app registered my e-mail").click()
    await page.get_by_text("cannot send text messages or make calls").wait_for()
    await page.get_by_label("E-mail address the app registered").fill("Ann@Example.com")
    await page.get_by_role("button", name="Send me a code").click()
    await page.get_by_text("a code is on its way").wait_for()
    code = await mailed_code(mailbox, "ann@example.com")
    await page.get_by_label("Code from the e-mail").fill(f"{code[:4]} {code[4:]}")
    await screenshot(page, "approver-email-code")
    await page.get_by_role("button", name="Check code").click()
    await page.locator("#enrol-button").click()
    await page.get_by_text("This phone is added").wait_for()
    await page.locator("#account-list").get_by_text("ann@example.com").wait_for()

    sent = await off_loop(
        official.one_touch.send_request,
        authy_id,
        "Log in to Example?",
        seconds_to_expire=120,
        details={"Username": "ann"},
        hidden_details={"match_choices": "17,42,83"},
    )
    assert sent.ok(), sent.errors()
    request = page.locator(f'article[data-uuid="{sent.get_uuid()}"]')
    await request.locator(".number-input").fill("42")
    await request.locator(".approve-button").click()
    await page.get_by_text("Approved").wait_for()
    status = await off_loop(official.one_touch.get_approval_status, sent.get_uuid())
    assert status["approval_request"]["status"] == "approved"
    received = await receiver.next_request()
    headers = {name.lower(): value for name, value in received.headers.items()}
    assert official.one_touch.validate_one_touch_signature(
        headers["x-authy-signature"],
        headers["x-authy-signature-nonce"],
        "POST",
        receiver.callback_url,
        json.loads(received.body),
    )

    await page.get_by_role("button", name="Show code").click()
    digits = page.locator(".code-digits")
    await digits.wait_for()
    await screenshot(page, "approver-code")
    shown = (await digits.text_content() or "").replace(" ", "")
    assert re.fullmatch(r"[0-9]{7}", shown), shown
    token = await off_loop(official.tokens.verify, authy_id, shown)
    assert token.ok(), token.errors()
    page_watch.assert_clean()
