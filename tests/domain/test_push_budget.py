"""The push budget on its own: never more pushes than the budget, even when logins race;
no push while locked or paused; only a login or a single-use, signed, recent e-mail link
fills it again. The live flow is tests/web/twofa/test_live_push_budget.py."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, update

from push2fa.domain import push_budget
from push2fa.models import AuditEvent, User, utcnow
from push2fa.services import Services


async def add_user(svc: Services, name: str) -> User:
    async with svc.db.session() as db:
        person = User(username=name, email=f"{name}@example.com", password_hash="x", authy_id=9)
        db.add(person)
        await db.commit()
        return person


async def reserve(svc: Services, user_id: int) -> push_budget.PushVerdict:
    async with svc.db.session() as db:
        return await push_budget.reserve(db, svc.settings, user_id)


async def sent(svc: Services, user: User) -> int:
    async with svc.db.session() as db:
        row = await db.get(User, user.id)
        assert row is not None
        return row.pushes_since_login


async def change(svc: Services, user: User, **values) -> None:
    async with svc.db.session() as db:
        await db.execute(update(User).where(User.id == user.id).values(**values))
        await db.commit()


async def test_pushes_go_out_until_the_budget_is_spent(svc):
    dana = await add_user(svc, "dana")
    budget = svc.settings.push_budget
    for _ in range(budget):
        assert (await reserve(svc, dana.id)).allowed
    refused = await reserve(svc, dana.id)
    assert refused == push_budget.PushVerdict(False, push_budget.SPENT)
    assert await sent(svc, dana) == budget


async def test_racing_logins_never_take_more_than_the_budget(svc):
    dana = await add_user(svc, "dana")
    budget = svc.settings.push_budget
    verdicts = await asyncio.gather(*(reserve(svc, dana.id) for _ in range(budget + 4)))
    assert sum(verdict.allowed for verdict in verdicts) == budget
    assert {v.reason for v in verdicts if not v.allowed} == {push_budget.SPENT}
    assert await sent(svc, dana) == budget


async def test_one_accounts_spent_budget_leaves_another_accounts(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    await change(svc, dana, pushes_since_login=svc.settings.push_budget)
    assert not (await reserve(svc, dana.id)).allowed
    assert (await reserve(svc, erin.id)).allowed


async def test_a_locked_second_factor_gets_no_push_and_spends_nothing(svc):
    dana = await add_user(svc, "dana")
    await change(svc, dana, second_factor_locked_at=utcnow())
    assert await reserve(svc, dana.id) == push_budget.PushVerdict(False, push_budget.LOCKED)
    assert await sent(svc, dana) == 0


async def test_a_report_pauses_pushes_until_its_time(svc):
    dana = await add_user(svc, "dana")
    until = utcnow() + timedelta(minutes=30)
    await change(svc, dana, push_blocked_until=until)
    verdict = await reserve(svc, dana.id)
    assert (verdict.allowed, verdict.reason, verdict.retry_at) == (False, "reported", until)
    assert await sent(svc, dana) == 0
    await change(svc, dana, push_blocked_until=utcnow() - timedelta(seconds=1))
    assert (await reserve(svc, dana.id)).allowed


async def test_an_unknown_account_gets_no_push(svc):
    verdict = await reserve(svc, 424242)
    assert not verdict.allowed and verdict.reason == push_budget.LOCKED


async def test_a_refund_gives_back_one_push_and_never_goes_below_zero(svc):
    dana = await add_user(svc, "dana")
    await change(svc, dana, pushes_since_login=2)
    async with svc.db.session() as db:
        await push_budget.refund(db, dana.id)
        await db.commit()
    assert await sent(svc, dana) == 1
    async with svc.db.session() as db:
        for _ in range(3):
            await push_budget.refund(db, dana.id)
        await db.commit()
    assert await sent(svc, dana) == 0


async def test_a_login_starts_only_that_accounts_budget_over(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    budget = svc.settings.push_budget
    await change(svc, dana, pushes_since_login=budget)
    await change(svc, erin, pushes_since_login=budget)
    async with svc.db.session() as db:
        await push_budget.start_over(db, dana.id)
        await db.commit()
    assert await sent(svc, dana) == 0
    assert await sent(svc, erin) == budget


# --- the e-mail link ------------------------------------------------------------------------


async def confirm(svc: Services, token: str, settings=None) -> bool:
    async with svc.db.session() as db:
        return await push_budget.confirm(db, settings or svc.settings, token)


async def usable(svc: Services, token: str) -> bool:
    async with svc.db.session() as db:
        return await push_budget.token_is_usable(db, svc.settings, token)


async def spent_budget(svc: Services, name: str = "dana") -> User:
    user = await add_user(svc, name)
    await change(svc, user, pushes_since_login=svc.settings.push_budget)
    return user


async def test_the_email_link_fills_the_budget_once(svc):
    dana = await spent_budget(svc)
    token = push_budget.confirm_token(svc.settings, dana)
    assert await usable(svc, token)
    assert await confirm(svc, token) is True
    assert await sent(svc, dana) == 0
    async with svc.db.session() as db:
        events = list((await db.execute(select(AuditEvent.event))).scalars())
    assert "push.budget_confirmed" in events
    await change(svc, dana, pushes_since_login=svc.settings.push_budget)
    assert not await usable(svc, token)
    assert await confirm(svc, token) is False
    assert await sent(svc, dana) == svc.settings.push_budget


async def test_the_same_link_clicked_twice_at_once_counts_once(svc):
    dana = await spent_budget(svc)
    token = push_budget.confirm_token(svc.settings, dana)
    results = await asyncio.gather(*(confirm(svc, token) for _ in range(3)))
    assert sorted(results) == [False, False, True]


async def test_each_link_is_its_own_single_use(svc):
    dana = await spent_budget(svc)
    first = push_budget.confirm_token(svc.settings, dana)
    second = push_budget.confirm_token(svc.settings, dana)
    assert first != second
    assert await confirm(svc, first) is True
    assert await confirm(svc, second) is True


async def test_a_link_fills_only_its_own_accounts_budget(svc):
    dana, erin = await spent_budget(svc, "dana"), await spent_budget(svc, "erin")
    assert await confirm(svc, push_budget.confirm_token(svc.settings, dana)) is True
    assert await sent(svc, erin) == svc.settings.push_budget


def _tampered(token: str) -> list[str]:
    # The signature's first character, not its last: the last one's low bits are base64
    # padding, so changing them may leave the same signature bytes.
    payload, _, signature = token.rpartition(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return [token[:-2], token + "xx", f"{payload}.{flipped}", "", "not-a-token", "." * 5]


async def test_a_forged_or_damaged_link_does_nothing(svc):
    dana = await spent_budget(svc)
    for token in _tampered(push_budget.confirm_token(svc.settings, dana)):
        assert not await usable(svc, token), token
        assert await confirm(svc, token) is False, token
    assert await sent(svc, dana) == svc.settings.push_budget


async def test_a_link_signed_with_another_secret_does_nothing(svc):
    dana = await spent_budget(svc)
    other = dataclasses.replace(svc.settings, secret_key="another-secret-key-long-enough-xxxxx")
    assert await confirm(svc, push_budget.confirm_token(other, dana)) is False
    assert await sent(svc, dana) == svc.settings.push_budget


def _signed(svc: Services, payload: object, age: timedelta = timedelta(0)) -> str:
    """Signed with the app's own key and salt, as if the link had been mailed `age` ago."""

    class SignedEarlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age.total_seconds())

    serializer = URLSafeTimedSerializer(
        svc.settings.secret_key, salt=push_budget.CONFIRM_SALT, signer=SignedEarlier
    )
    return str(serializer.dumps(payload))


async def test_an_old_link_does_nothing(svc):
    dana = await spent_budget(svc)
    stale = _signed(svc, {"u": dana.id, "j": "old"}, push_budget.CONFIRM_MAX_AGE + timedelta(1))
    recent = _signed(svc, {"u": dana.id, "j": "new"}, push_budget.CONFIRM_MAX_AGE / 2)
    assert await confirm(svc, stale) is False
    assert await sent(svc, dana) == svc.settings.push_budget
    assert await confirm(svc, recent) is True


@pytest.mark.parametrize(
    "payload", [{"u": "x", "j": "a"}, {"j": "a"}, {"u": 1}, [1, 2], "text", None, {"u": [1]}]
)
async def test_a_signed_link_of_another_shape_does_nothing(svc, payload):
    dana = await spent_budget(svc)
    token = _signed(svc, payload)
    assert not await usable(svc, token)
    assert await confirm(svc, token) is False
    assert await sent(svc, dana) == svc.settings.push_budget


async def test_a_link_for_a_deleted_account_does_nothing(svc):
    token = _signed(svc, {"u": 424242, "j": "gone"})
    assert await confirm(svc, token) is False
    assert await usable(svc, token)  # spent nothing: it was never a use
