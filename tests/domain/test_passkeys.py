"""Passkeys called directly, answered by a software authenticator (tests/softkey.py) and
checked by the product's real verifier: each ceremony counts once, for its own account, its
own purpose and its own login; another account's passkey, a replay, a cloned key, a key
without user verification or a synced one where refused changes nothing. Racing answers
run at once on the real database. The pages and Chromium's authenticator are covered by
tests/web/passkeys/."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select, update

from push2fa.domain import challenges, passkeys
from push2fa.domain.passkeys import PasskeyRefused
from push2fa.models import (
    AuditEvent,
    ChallengePurpose,
    ChallengeStatus,
    LoginChallenge,
    Passkey,
    PasskeyCeremony,
    User,
    utcnow,
)
from push2fa.services import Services
from tests.domain.rows import add_user
from tests.softkey import SoftKey
from tests.web.auth.mailbox import sent_mail

CONTEXT = challenges.Context("203.0.113.5", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")


async def begin_registration(svc: Services, user: User) -> passkeys.Started:
    async with svc.db.session() as db:
        return await passkeys.begin_registration(db, svc.settings, user)


async def register(
    app: Quart, svc: Services, user: User, started: passkeys.Started, answer: Any, name: str = "key"
) -> Passkey:
    async with app.app_context(), svc.db.session() as db:
        return await passkeys.register(db, svc.settings, user, started.ceremony, answer, name)


async def enrol(app: Quart, svc: Services, user: User, key: SoftKey, name: str = "key") -> Passkey:
    started = await begin_registration(svc, user)
    return await register(app, svc, user, started, key.create(started.options), name)


async def pending_login(svc: Services, user: User) -> LoginChallenge:
    async with svc.db.session() as db:
        return await passkeys.begin_without_push(
            db, svc.settings, user, CONTEXT, ChallengePurpose.LOGIN
        )


async def begin_second_factor(svc: Services, challenge: LoginChallenge) -> passkeys.Started:
    async with svc.db.session() as db:
        return await passkeys.begin_second_factor(db, svc.settings, challenge)


async def answer(
    svc: Services, challenge: LoginChallenge, started: passkeys.Started, credential: Any
) -> LoginChallenge:
    async with svc.db.session() as db:
        return await passkeys.answer_second_factor(
            db, svc.settings, svc.realtime, challenge, started.ceremony, credential
        )


async def begin_sign_in(svc: Services) -> passkeys.Started:
    async with svc.db.session() as db:
        return await passkeys.begin_sign_in(db, svc.settings)


async def sign_in(svc: Services, started: passkeys.Started, credential: Any) -> LoginChallenge:
    async with svc.db.session() as db:
        return await passkeys.sign_in(
            db, svc.settings, svc.realtime, started.ceremony, credential, CONTEXT
        )


async def rows(svc: Services, model: Any) -> list[Any]:
    async with svc.db.session() as db:
        return list((await db.execute(select(model).order_by(model.id))).scalars())


async def status_of(svc: Services, challenge: LoginChallenge) -> str:
    async with svc.db.session() as db:
        row = await db.get(LoginChallenge, challenge.id)
        assert row is not None
        return row.status


async def events(svc: Services, name: str) -> list[AuditEvent]:
    return [e for e in await rows(svc, AuditEvent) if e.event == name]


async def failed_attempts(svc: Services, user: User) -> int:
    async with svc.db.session() as db:
        row = await db.get(User, user.id)
        assert row is not None
        return row.failed_attempts


def refusal(message: str) -> Any:
    return pytest.raises(PasskeyRefused, match=message)


def without_synced(svc: Services) -> Any:
    return dataclasses.replace(svc.settings, passkeys_allow_synced=False)


# --- registration ---------------------------------------------------------------------------


async def test_a_passkey_answering_the_users_own_ceremony_is_stored_audited_and_mailed(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey()
    added = await enrol(app, svc, alice, key, "  my   laptop ")
    [stored] = await rows(svc, Passkey)
    assert (stored.id, stored.user_id, stored.credential_id) == (added.id, alice.id, key.id)
    assert (stored.name, stored.sign_count, stored.device_type) == ("my laptop", 1, "single_device")
    [event] = await events(svc, "passkey.added")
    assert event.user_id == alice.id and event.details == {"passkey": added.id, "synced": False}
    [mail] = await sent_mail(app)
    assert mail["To"] == "alice@example.com" and "passkey was added" in str(mail["Subject"])


async def test_a_registration_answer_works_once(app, svc):
    alice = await add_user(svc, "alice")
    started = await begin_registration(svc, alice)
    captured = SoftKey().create(started.options)
    await register(app, svc, alice, started, captured)
    with refusal("expired or was already used"):
        await register(app, svc, alice, started, captured)
    assert len(await rows(svc, Passkey)) == 1


async def test_a_ceremony_begun_for_one_account_does_not_add_a_passkey_to_another(app, svc):
    """Mallory sends Alice's ceremony id (seen on Alice's screen) with her own account."""
    alice, mallory = await add_user(svc, "alice"), await add_user(svc, "mallory")
    started = await begin_registration(svc, alice)
    with refusal("not valid"):
        await register(app, svc, mallory, started, SoftKey().create(started.options))
    assert await rows(svc, Passkey) == []


async def test_a_ceremony_of_another_purpose_does_not_register(app, svc):
    alice = await add_user(svc, "alice")
    sign_in_ceremony = await begin_sign_in(svc)
    forged = passkeys.Started(
        sign_in_ceremony.ceremony, (await begin_registration(svc, alice)).options
    )
    with refusal("expired or was already used"):
        await register(app, svc, alice, forged, SoftKey().create(forged.options))
    assert await rows(svc, Passkey) == []


async def test_an_expired_ceremony_does_not_register(app, svc):
    alice = await add_user(svc, "alice")
    started = await begin_registration(svc, alice)
    async with svc.db.session() as db:
        await db.execute(
            update(PasskeyCeremony)
            .where(PasskeyCeremony.id == started.ceremony)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()
    with refusal("expired or was already used"):
        await register(app, svc, alice, started, SoftKey().create(started.options))
    assert await rows(svc, Passkey) == []


@pytest.mark.parametrize("ceremony", ["", "x" * 65, "no-such-ceremony", "' or 1=1 --"])
async def test_a_ceremony_id_the_server_did_not_issue_is_refused_cleanly(app, svc, ceremony):
    alice = await add_user(svc, "alice")
    started = await begin_registration(svc, alice)
    forged = passkeys.Started(ceremony, started.options)
    with refusal("not valid|expired or was already used"):
        await register(app, svc, alice, forged, SoftKey().create(started.options))
    assert await rows(svc, Passkey) == []


async def test_an_answer_over_another_ceremonys_challenge_is_refused(app, svc):
    alice = await add_user(svc, "alice")
    first, second = await begin_registration(svc, alice), await begin_registration(svc, alice)
    with refusal("could not be verified"):
        await register(app, svc, alice, second, SoftKey().create(first.options))
    assert await rows(svc, Passkey) == []


async def test_an_answer_made_on_another_origin_is_refused(app, svc):
    """A phishing site relays the options and its visitor's key answers for its origin."""
    alice = await add_user(svc, "alice")
    started = await begin_registration(svc, alice)
    answer_there = SoftKey().create(started.options, origin="https://login.evil.example")
    with refusal("could not be verified"):
        await register(app, svc, alice, started, answer_there)
    assert await rows(svc, Passkey) == []


@pytest.mark.parametrize("garbage", [None, "", "{", "[]", 12, {"id": "AAAA"}, "x" * 20_000])
async def test_a_garbage_registration_answer_is_refused_cleanly(app, svc, garbage):
    alice = await add_user(svc, "alice")
    started = await begin_registration(svc, alice)
    with refusal("not added"):
        await register(app, svc, alice, started, garbage)
    assert await rows(svc, Passkey) == []


async def test_a_synced_passkey_is_refused_where_only_device_bound_keys_are_allowed(app, svc):
    alice = await add_user(svc, "alice")
    started = await begin_registration(svc, alice)
    async with app.app_context(), svc.db.session() as db:
        with refusal("only device-bound"):
            await passkeys.register(
                db,
                without_synced(svc),
                alice,
                started.ceremony,
                SoftKey(synced=True).create(started.options),
                "phone",
            )
    assert await rows(svc, Passkey) == []
    synced = await enrol(app, svc, alice, SoftKey(synced=True))  # allowed by default
    assert synced.device_type == "multi_device" and synced.backed_up


async def test_a_passkey_already_registered_to_one_account_is_not_added_to_another(app, svc):
    alice, mallory = await add_user(svc, "alice"), await add_user(svc, "mallory")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    with refusal("already registered"):
        await enrol(app, svc, mallory, key)
    assert [p.user_id for p in await rows(svc, Passkey)] == [alice.id]


async def test_one_passkey_registered_to_two_accounts_at_once_is_stored_once(app, svc):
    """The same credential sent to two registrations at the same moment: the second is
    refused like any already-registered passkey, not a server error."""
    alice, mallory = await add_user(svc, "alice"), await add_user(svc, "mallory")
    key = SoftKey()
    for_alice, for_mallory = (
        await begin_registration(svc, alice),
        await begin_registration(svc, mallory),
    )
    outcomes = await asyncio.gather(
        register(app, svc, alice, for_alice, key.create(for_alice.options)),
        register(app, svc, mallory, for_mallory, key.create(for_mallory.options)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, Passkey) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, PasskeyRefused) for o in outcomes) == 1, outcomes
    assert len(await rows(svc, Passkey)) == 1


@pytest.mark.parametrize("name", ["bad\x00name", "tab\x7fdel", "bell\x07"])
async def test_a_name_with_control_characters_is_refused_before_the_ceremony_is_spent(
    app, svc, name
):
    alice = await add_user(svc, "alice")
    started = await begin_registration(svc, alice)
    key = SoftKey()
    with refusal("not allowed"):
        await register(app, svc, alice, started, key.create(started.options), name)
    assert await rows(svc, Passkey) == []
    await register(app, svc, alice, started, key.create(started.options), "fine")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("", "Passkey"),
        (None, "Passkey"),
        ("   ", "Passkey"),
        ("a\t b\n c", "a b c"),
        ("é" * 90, "é" * 80),
    ],
)
def test_a_passkey_name_is_tidied(raw: str | None, clean: str) -> None:
    assert passkeys.clean_name(raw) == clean


async def test_a_new_registration_excludes_the_users_own_passkeys_only(app, svc):
    alice, bob = await add_user(svc, "alice"), await add_user(svc, "bob")
    alices, bobs = SoftKey(), SoftKey()
    await enrol(app, svc, alice, alices)
    await enrol(app, svc, bob, bobs)
    started = await begin_registration(svc, alice)
    assert [c["id"] for c in started.options["excludeCredentials"]] == [alices.id]


async def test_the_user_handle_is_stable_per_account_and_names_no_id(svc):
    one, again, other = (passkeys.user_handle(svc.settings, n) for n in (1, 1, 2))
    assert one == again != other
    assert len(one) == 32
    other_site = dataclasses.replace(svc.settings, secret_key="another-secret-key-0123456789abc")
    assert passkeys.user_handle(other_site, 1) != one


# --- rename and remove ----------------------------------------------------------------------


async def test_renaming_changes_only_the_users_own_passkey(app, svc):
    alice, mallory = await add_user(svc, "alice"), await add_user(svc, "mallory")
    alices = await enrol(app, svc, alice, SoftKey(), "laptop")
    async with svc.db.session() as db:
        assert await passkeys.rename(db, mallory.id, alices.id, "pwned") is False
        assert await passkeys.rename(db, alice.id, alices.id, "desk key") is True
        with refusal("not allowed"):
            await passkeys.rename(db, alice.id, alices.id, "new\x1bname")
    [stored] = await rows(svc, Passkey)
    assert stored.name == "desk key"
    assert [e.user_id for e in await events(svc, "passkey.renamed")] == [alice.id]


async def test_removing_forgets_only_the_users_own_passkey_and_tells_them(app, svc):
    alice, mallory = await add_user(svc, "alice"), await add_user(svc, "mallory")
    alices = await enrol(app, svc, alice, SoftKey(), "laptop")
    async with app.app_context(), svc.db.session() as db:
        assert await passkeys.remove(db, svc.settings, mallory, alices.id) is False
    assert len(await rows(svc, Passkey)) == 1
    async with app.app_context(), svc.db.session() as db:
        assert await passkeys.remove(db, svc.settings, alice, alices.id) is True
        assert await passkeys.remove(db, svc.settings, alice, alices.id) is False
    assert await rows(svc, Passkey) == []
    assert [e.user_id for e in await events(svc, "passkey.removed")] == [alice.id]
    subjects = [str(m["Subject"]) for m in await sent_mail(app)]
    assert sum("removed" in s for s in subjects) == 1
    assert all("mallory" not in str(m["To"]) for m in await sent_mail(app))


# --- a passkey as the second factor ---------------------------------------------------------


async def test_the_users_passkey_approves_and_consumes_the_bound_login(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    login = await pending_login(svc, alice)
    started = await begin_second_factor(svc, login)
    assert [c["id"] for c in started.options["allowCredentials"]] == [key.id]
    done = await answer(svc, login, started, key.get(started.options))
    assert done.id == login.id
    assert await status_of(svc, login) == ChallengeStatus.CONSUMED
    [stored] = await rows(svc, Passkey)
    assert stored.sign_count == 2 and stored.last_used_at is not None


async def test_a_second_factor_answer_works_once(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    first = await pending_login(svc, alice)
    started = await begin_second_factor(svc, first)
    captured = key.get(started.options)
    await answer(svc, first, started, captured)
    second = await pending_login(svc, alice)  # the attacker's own login, same account
    with refusal("expired or was already used"):
        await answer(svc, second, started, captured)
    assert await status_of(svc, second) == ChallengeStatus.PENDING


async def test_a_ceremony_of_one_login_does_not_answer_another(app, svc):
    """The answer given for the victim's login is replayed against the attacker's login."""
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    victims, attackers = await pending_login(svc, alice), await pending_login(svc, alice)
    started = await begin_second_factor(svc, victims)
    with refusal("another login"):
        await answer(svc, attackers, started, key.get(started.options))
    assert await status_of(svc, attackers) == ChallengeStatus.PENDING


async def test_another_accounts_passkey_does_not_answer_and_counts_as_a_failure(app, svc):
    alice, mallory = await add_user(svc, "alice"), await add_user(svc, "mallory")
    await enrol(app, svc, alice, SoftKey())
    mallorys = SoftKey()
    await enrol(app, svc, mallory, mallorys)
    login = await pending_login(svc, alice)
    started = await begin_second_factor(svc, login)
    with refusal("not registered for this account"):
        await answer(svc, login, started, mallorys.get(started.options))
    assert await status_of(svc, login) == ChallengeStatus.PENDING
    assert await failed_attempts(svc, alice) == 1
    assert [e.details for e in await events(svc, "auth.failure")] == [{"kind": "passkey"}]


async def test_a_cloned_key_whose_count_goes_back_is_refused_as_a_failure(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    started = await begin_second_factor(svc, await pending_login(svc, alice))
    key.sign_count = 10
    await answer(svc, (await rows(svc, LoginChallenge))[0], started, key.get(started.options))
    login = await pending_login(svc, alice)
    started = await begin_second_factor(svc, login)
    key.sign_count = 5  # the clone has used the key fewer times
    with refusal("could not be verified"):
        await answer(svc, login, started, key.get(started.options))
    assert await status_of(svc, login) == ChallengeStatus.PENDING
    assert await failed_attempts(svc, alice) == 1


async def test_a_locked_account_is_not_answered_by_a_passkey(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    login = await pending_login(svc, alice)
    started = await begin_second_factor(svc, login)
    async with svc.db.session() as db:
        await db.execute(
            update(User).where(User.id == alice.id).values(second_factor_locked_at=utcnow())
        )
        await db.commit()
    with refusal("locked"):
        await answer(svc, login, started, key.get(started.options))
    assert await status_of(svc, login) == ChallengeStatus.PENDING


async def test_a_second_factor_ceremony_needs_a_pending_login_and_a_passkey(app, svc):
    alice = await add_user(svc, "alice")
    login = await pending_login(svc, alice)
    with refusal("no passkey"):
        await begin_second_factor(svc, login)
    await enrol(app, svc, alice, SoftKey())
    async with svc.db.session() as db:
        await db.execute(
            update(LoginChallenge)
            .where(LoginChallenge.id == login.id)
            .values(status=ChallengeStatus.CANCELLED)
        )
        await db.commit()
        cancelled = await db.get(LoginChallenge, login.id)
    assert cancelled is not None
    with refusal("no longer waiting"):
        await begin_second_factor(svc, cancelled)


async def test_a_sign_in_ceremony_does_not_answer_a_second_factor(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    login = await pending_login(svc, alice)
    started = await begin_sign_in(svc)
    with refusal("expired or was already used"):
        await answer(svc, login, started, key.get(started.options))
    assert await status_of(svc, login) == ChallengeStatus.PENDING


async def test_two_answers_for_one_login_at_once_consume_it_once(app, svc):
    """The same login answered from two tabs at the same moment: one wins."""
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    login = await pending_login(svc, alice)
    one, two = await begin_second_factor(svc, login), await begin_second_factor(svc, login)
    answers = [key.get(one.options), key.get(two.options)]
    outcomes = await asyncio.gather(
        answer(svc, login, one, answers[0]),
        answer(svc, login, two, answers[1]),
        return_exceptions=True,
    )
    assert sum(isinstance(o, LoginChallenge) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, PasskeyRefused) for o in outcomes) == 1, outcomes
    assert await status_of(svc, login) == ChallengeStatus.CONSUMED


# --- a passkey as the whole sign-in ---------------------------------------------------------


async def test_a_discoverable_passkey_signs_its_owner_in_through_a_consumed_challenge(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    started = await begin_sign_in(svc)
    assert started.options["allowCredentials"] == []
    done = await sign_in(svc, started, key.get(started.options))
    assert done.user_id == alice.id
    assert await status_of(svc, done) == ChallengeStatus.CONSUMED
    assert done.decided_by == "passkey"


async def test_a_sign_in_without_user_verification_is_refused(app, svc):
    """Both factors in one: a key that only proves presence is not enough."""
    alice = await add_user(svc, "alice")
    key = SoftKey(verifies=False)
    await enrol(app, svc, alice, key)
    with refusal("refused"):
        started = await begin_sign_in(svc)
        await sign_in(svc, started, key.get(started.options))
    assert await rows(svc, LoginChallenge) == []


async def test_a_sign_in_answer_works_once(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey(counting=False)  # a synced passkey: no sign count to catch a replay
    await enrol(app, svc, alice, key)
    started = await begin_sign_in(svc)
    captured = key.get(started.options)
    await sign_in(svc, started, captured)
    with refusal("expired or was already used"):
        await sign_in(svc, started, captured)
    assert len(await rows(svc, LoginChallenge)) == 1


async def test_an_unknown_passkey_does_not_sign_in(app, svc):
    await add_user(svc, "alice")
    started = await begin_sign_in(svc)
    with refusal("not registered"):
        await sign_in(svc, started, SoftKey().get(started.options))
    assert await rows(svc, LoginChallenge) == []


async def test_a_locked_account_is_not_signed_in_by_a_passkey(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    async with svc.db.session() as db:
        await db.execute(
            update(User).where(User.id == alice.id).values(second_factor_locked_at=utcnow())
        )
        await db.commit()
    started = await begin_sign_in(svc)
    with refusal("locked"):
        await sign_in(svc, started, key.get(started.options))
    assert await rows(svc, LoginChallenge) == []


async def test_a_synced_passkey_no_longer_signs_in_once_the_site_refuses_them(app, svc):
    alice = await add_user(svc, "alice")
    key = SoftKey(synced=True, counting=False)
    await enrol(app, svc, alice, key)  # allowed when it was added
    started = await begin_sign_in(svc)
    async with svc.db.session() as db:
        with refusal("only device-bound"):
            await passkeys.sign_in(
                db,
                without_synced(svc),
                svc.realtime,
                started.ceremony,
                key.get(started.options),
                CONTEXT,
            )
    assert await rows(svc, LoginChallenge) == []


async def test_a_cloned_key_signing_in_twice_at_once_gets_in_once(app, svc):
    """Two copies of one security key answer two sign-ins at the same moment with the same
    count: the count moves once, so one of them is refused."""
    alice = await add_user(svc, "alice")
    key = SoftKey()
    await enrol(app, svc, alice, key)
    one, two = await begin_sign_in(svc), await begin_sign_in(svc)
    first = key.get(one.options)
    key.sign_count -= 1  # the clone is at the same count
    second = key.get(two.options)
    outcomes = await asyncio.gather(
        sign_in(svc, one, first), sign_in(svc, two, second), return_exceptions=True
    )
    assert sum(isinstance(o, LoginChallenge) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, PasskeyRefused) for o in outcomes) == 1, outcomes
    [stored] = await rows(svc, Passkey)
    assert stored.sign_count == 2
