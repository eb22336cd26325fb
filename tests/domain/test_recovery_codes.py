"""Recovery codes on their own: ten codes, each works once, only for its own account, only
whole. Direct calls against a real migrated database (these also kill mutants, see
docs/mutation.md)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import select

from push2fa.domain import recovery_codes
from push2fa.models import RecoveryCode, User
from push2fa.services import Services
from tests.domain.rows import add_user, events


async def new_codes(svc: Services, user: User) -> list[str]:
    async with svc.db.session() as db:
        return await recovery_codes.regenerate(db, svc.settings, user.id)


async def spend(svc: Services, user: User, code: str) -> bool:
    async with svc.db.session() as db:
        return await recovery_codes.use(db, svc.settings, user.id, code)


async def left(svc: Services, user: User) -> int:
    async with svc.db.session() as db:
        return await recovery_codes.remaining(db, user.id)


async def test_ten_distinct_readable_codes_are_issued(svc):
    codes = await new_codes(svc, await add_user(svc, "dana"))
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert re.fullmatch(r"[a-hjkmnp-z2-9]{5}-[a-hjkmnp-z2-9]{5}", code), code


async def test_each_recovery_code_works_once(svc):
    dana = await add_user(svc, "dana")
    codes = await new_codes(svc, dana)
    assert await left(svc, dana) == 10
    assert await spend(svc, dana, codes[3]) is True
    assert await spend(svc, dana, codes[3]) is False
    assert await left(svc, dana) == 9
    assert "recovery_code.used" in await events(svc, dana)


async def test_recovery_code_of_another_account_is_refused(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    codes = await new_codes(svc, dana)
    await new_codes(svc, erin)
    assert await spend(svc, erin, codes[0]) is False
    assert await left(svc, erin) == 10
    assert await spend(svc, dana, codes[0]) is True


async def test_recovery_code_compared_whole_not_prefix(svc):
    dana = await add_user(svc, "dana")
    code = (await new_codes(svc, dana))[0]
    for wrong in (code[:-1], code[:5], code + "a", code[1:], code[:-1] + "2"):
        if wrong != code:
            assert await spend(svc, dana, wrong) is False, wrong
    assert await left(svc, dana) == 10


async def test_recovery_code_ignores_case_spaces_and_dashes(svc):
    dana = await add_user(svc, "dana")
    code = (await new_codes(svc, dana))[0]
    typed = " " + code.upper().replace("-", " ") + " "
    assert await spend(svc, dana, typed) is True


@pytest.mark.parametrize("typed", ["", "   ", "-----", "\u00a0"])
async def test_empty_recovery_code_is_refused_and_spends_nothing(svc, typed):
    dana = await add_user(svc, "dana")
    await new_codes(svc, dana)
    assert await spend(svc, dana, typed) is False
    assert await left(svc, dana) == 10


async def test_new_codes_replace_the_old_ones(svc):
    dana = await add_user(svc, "dana")
    old = await new_codes(svc, dana)
    new = await new_codes(svc, dana)
    assert await left(svc, dana) == 10
    assert await spend(svc, dana, old[0]) is False
    assert await spend(svc, dana, new[0]) is True
    assert "recovery_codes.generated" in await events(svc, dana)


async def test_new_codes_for_one_account_leave_another_accounts_codes(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    erins = await new_codes(svc, erin)
    await new_codes(svc, dana)
    assert await left(svc, erin) == 10
    assert await spend(svc, erin, erins[0]) is True


async def test_remaining_counts_only_unused_codes_of_that_account(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    codes = await new_codes(svc, dana)
    for code in codes[:8]:
        assert await spend(svc, dana, code) is True
    assert await left(svc, dana) == 2
    assert await left(svc, erin) == 0


async def test_codes_are_stored_as_keyed_hashes_only(svc):
    dana = await add_user(svc, "dana")
    codes = await new_codes(svc, dana)
    async with svc.db.session() as db:
        stored = set((await db.execute(select(RecoveryCode.code_hash))).scalars())
    assert len(stored) == 10
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in stored)


async def test_a_code_made_under_another_secret_key_does_not_work(svc):
    dana = await add_user(svc, "dana")
    code = (await new_codes(svc, dana))[0]
    other = dataclasses.replace(svc.settings, secret_key="another-secret-key-long-enough-xxxxx")
    async with svc.db.session() as db:
        assert await recovery_codes.use(db, other, dana.id, code) is False
    assert await spend(svc, dana, code) is True


async def test_turning_2fa_off_voids_every_code_of_that_account_only(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    danas, erins = await new_codes(svc, dana), await new_codes(svc, erin)
    async with svc.db.session() as db:
        await recovery_codes.void(db, dana.id)
        await db.commit()
    assert await left(svc, dana) == 0
    for code in danas:
        assert await spend(svc, dana, code) is False, code
    assert await left(svc, erin) == 10
    assert await spend(svc, erin, erins[0]) is True


# A printout from an earlier release: the code, the secret key the server had then, and the
# digest it stored. A change to how codes are normalised or hashed must not lock its owner out.
EARLIER_KEY = "a-secret-key-of-an-earlier-release-xx"
EARLIER_CODE = "k7m2p-q9rst"
EARLIER_DIGEST = "2f75890214023cd5b47665d44908345890d3d759b1bf2d5757286573f4214f24"


async def test_a_code_printed_under_an_earlier_release_still_works(svc):
    dana = await add_user(svc, "dana")
    async with svc.db.session() as db:
        db.add(RecoveryCode(user_id=dana.id, code_hash=EARLIER_DIGEST))
        await db.commit()
    earlier = dataclasses.replace(svc.settings, secret_key=EARLIER_KEY)
    async with svc.db.session() as db:
        assert await recovery_codes.use(db, earlier, dana.id, " K7M2P Q9RST ") is True
        assert await recovery_codes.use(db, earlier, dana.id, EARLIER_CODE) is False
