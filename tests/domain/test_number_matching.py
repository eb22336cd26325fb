"""Number matching on its own: a two-digit code among three distinct choices, a pick that
counts only when it is the whole code, and when a login must match (always, off, or only
when risky: a browser this account never logged in from, or soon after a denial). The live
flow is tests/web/twofa/test_live_abuse.py."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import update

from push2fa.domain import audit, challenges, number_matching
from push2fa.models import ChallengeStatus, LoginChallenge, User, utcnow
from push2fa.services import Services
from tests.domain.rows import add_user

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
HOME = "192.0.2.10"


def test_a_code_is_two_digits():
    codes = {number_matching.new_code() for _ in range(2000)}
    assert all(len(code) == 2 and code.isdigit() and code[0] != "0" for code in codes)
    assert len(codes) > 60  # spread over 10..99, not a handful of values


def test_the_choices_are_the_code_and_two_different_decoys():
    for _ in range(300):
        code = number_matching.new_code()
        choices = number_matching.choices_for(code)
        assert len(choices) == 3 == len(set(choices))
        assert code in choices
        assert all(len(choice) == 2 and choice.isdigit() for choice in choices)


def test_the_code_is_not_always_in_the_same_place():
    places = {number_matching.choices_for("42").index("42") for _ in range(200)}
    assert places == {0, 1, 2}


def pushed(match_code: str | None) -> LoginChallenge:
    return LoginChallenge(match_code=match_code)


@pytest.mark.parametrize("picked", ["42", " 42", "42 \n"])
def test_the_right_pick_matches(picked):
    assert number_matching.picked_right(pushed("42"), picked)


@pytest.mark.parametrize("picked", [None, "", " ", "4", "2", "24", "420", "042", "43", "reported"])
def test_a_wrong_partial_or_missing_pick_does_not_match(picked):
    assert not number_matching.picked_right(pushed("42"), picked)


@pytest.mark.parametrize("picked", [None, "", "17"])
def test_without_a_code_any_answer_matches(picked):
    assert number_matching.picked_right(pushed(None), picked)


def test_matching_is_enforced_only_where_the_phone_can_pick(app):
    settings = app.extensions["push2fa"].settings
    assert number_matching.enforced(dataclasses.replace(settings, push_service="emulator"))
    assert not number_matching.enforced(dataclasses.replace(settings, push_service="authy"))


pytestmark = pytest.mark.usefixtures("background_stopped")


async def logged_in_from(svc: Services, user: User, ip: str, agent: str) -> None:
    async with svc.db.session() as db:
        audit.record(db, "login.succeeded", user.id, origin=(ip, agent))
        await db.commit()


async def denied_push(svc: Services, user: User, ago: timedelta = timedelta(0)) -> None:
    async with svc.db.session() as db:
        challenge = await challenges.create(db, user, challenges.Context(HOME, CHROME), 120)
        await challenges.decide(db, svc.realtime, challenge.id, ChallengeStatus.DENIED, by="t")
        if ago:
            await db.execute(
                update(LoginChallenge)
                .where(LoginChallenge.id == challenge.id)
                .values(decided_at=utcnow() - ago)
            )
            await db.commit()


async def risky(
    svc: Services, user: User, ip: str = HOME, agent: str = CHROME, trusted: bool = False
) -> bool:
    async with svc.db.session() as db:
        return await number_matching.is_risky(db, svc.settings, user, ip, agent, trusted)


async def test_a_browser_never_seen_to_log_in_is_risky(svc):
    dana = await add_user(svc, "dana", 11)
    assert await risky(svc, dana) is True


async def test_the_browser_and_address_of_an_earlier_login_are_not_risky(svc):
    dana = await add_user(svc, "dana", 11)
    await logged_in_from(svc, dana, HOME, CHROME)
    assert await risky(svc, dana) is False
    assert await risky(svc, dana, ip="192.0.2.11") is True
    assert await risky(svc, dana, agent=CHROME + " x") is True


async def test_another_accounts_logins_do_not_make_a_browser_safe(svc):
    dana, erin = await add_user(svc, "dana", 11), await add_user(svc, "erin", 12)
    await logged_in_from(svc, erin, HOME, CHROME)
    assert await risky(svc, dana) is True


async def test_a_trusted_browser_is_not_risky(svc):
    dana = await add_user(svc, "dana", 11)
    assert await risky(svc, dana, trusted=True) is False


async def test_a_recent_denial_makes_even_a_known_trusted_browser_risky(svc):
    dana = await add_user(svc, "dana", 11)
    await logged_in_from(svc, dana, HOME, CHROME)
    await denied_push(svc, dana)
    assert await risky(svc, dana, trusted=True) is True
    assert await risky(svc, dana) is True


async def test_a_denial_older_than_the_window_no_longer_counts(svc):
    dana = await add_user(svc, "dana", 11)
    await logged_in_from(svc, dana, HOME, CHROME)
    window = timedelta(seconds=svc.settings.push_budget_window)
    await denied_push(svc, dana, ago=window + timedelta(minutes=1))
    assert await risky(svc, dana) is False


async def test_another_accounts_denial_does_not_make_a_login_risky(svc):
    dana, erin = await add_user(svc, "dana", 11), await add_user(svc, "erin", 12)
    await logged_in_from(svc, dana, HOME, CHROME)
    await denied_push(svc, erin)
    assert await risky(svc, dana) is False


@pytest.mark.parametrize(
    ("mode", "known", "needed"),
    [
        ("always", True, True),
        ("always", False, True),
        ("off", True, False),
        ("off", False, False),
        ("risky", True, False),
        ("risky", False, True),
    ],
)
async def test_when_matching_is_required(svc, mode, known, needed):
    dana = await add_user(svc, "dana", 11)
    if known:
        await logged_in_from(svc, dana, HOME, CHROME)
    settings = dataclasses.replace(svc.settings, number_matching=mode)
    async with svc.db.session() as db:
        assert await number_matching.required(db, settings, dana, HOME, CHROME, False) is needed
