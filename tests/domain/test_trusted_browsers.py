"""Trusted browsers on their own: a cookie proves one browser of one account, until it
expires, is revoked, or the password changes. Direct calls against a real migrated database
(these also kill mutants, see docs/mutation.md)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from werkzeug.wrappers import Response

from push2fa.domain import trusted_browsers
from push2fa.models import AuditEvent, TrustedDevice, User, utcnow
from push2fa.services import Services
from tests.domain.rows import add_user

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


async def trust(svc: Services, user: User, ip: str = "10.0.0.7") -> str:
    async with svc.db.session() as db:
        return await trusted_browsers.issue(db, svc.settings, user, ip, CHROME)


async def proves(svc: Services, user: User, cookie: str | None) -> TrustedDevice | None:
    async with svc.db.session() as db:
        found = await trusted_browsers.check(db, svc.settings, user, cookie)
        await db.commit()
        return found


async def device_of(svc: Services, cookie: str) -> TrustedDevice:
    async with svc.db.session() as db:
        device = await db.get(TrustedDevice, int(cookie.partition(".")[0]))
        assert device is not None
        return device


async def change_device(svc: Services, cookie: str, **values) -> None:
    async with svc.db.session() as db:
        device_id = int(cookie.partition(".")[0])
        await db.execute(update(TrustedDevice).where(TrustedDevice.id == device_id).values(values))
        await db.commit()


async def test_issued_cookie_proves_that_browser_for_its_user(svc):
    dana = await add_user(svc, "dana")
    cookie = await trust(svc, dana)
    device = await proves(svc, dana, cookie)
    assert device is not None and device.user_id == dana.id
    stored = await device_of(svc, cookie)
    assert stored.ip == "10.0.0.7" and "Chrome" in stored.browser
    days = stored.expires_at - stored.created_at
    assert days == timedelta(days=svc.settings.trusted_browser_days)
    async with svc.db.session() as db:
        logged = list((await db.execute(select(AuditEvent.event))).scalars())
    assert "trusted_browser.added" in logged


async def test_trusted_browser_cookie_of_another_account_is_refused(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    cookie = await trust(svc, dana)
    assert await proves(svc, erin, cookie) is None


async def test_trusted_cookie_with_a_wrong_secret_is_refused(svc):
    dana = await add_user(svc, "dana")
    cookie = await trust(svc, dana)
    device_id, _, secret = cookie.partition(".")
    other = await trust(svc, dana)
    for forged in (
        f"{device_id}.{secret[:-1]}",
        f"{device_id}.{secret}x",
        f"{device_id}.",
        f"{device_id}.{other.partition('.')[2]}",
    ):
        assert await proves(svc, dana, forged) is None, forged


async def test_trusted_cookie_is_only_valid_under_the_secret_key_it_was_made_with(svc):
    dana = await add_user(svc, "dana")
    cookie = await trust(svc, dana)
    other = dataclasses.replace(svc.settings, secret_key="another-secret-key-long-enough-xxxxx")
    async with svc.db.session() as db:
        assert await trusted_browsers.check(db, other, dana, cookie) is None


@pytest.mark.parametrize(
    "cookie", [None, "", "nodot", "abc.def", "-1.x", "1e3.x", ".secret", "1.x" + "y" * 200]
)
async def test_malformed_trusted_cookie_is_refused_without_error(svc, cookie):
    dana = await add_user(svc, "dana")
    await trust(svc, dana)
    assert await proves(svc, dana, cookie) is None


async def test_overlong_trusted_cookie_is_refused_even_if_it_starts_right(svc):
    dana = await add_user(svc, "dana")
    cookie = await trust(svc, dana)
    assert await proves(svc, dana, cookie + "." + "a" * 128) is None


async def test_revoked_trusted_browser_is_refused(svc):
    dana = await add_user(svc, "dana")
    cookie = await trust(svc, dana)
    async with svc.db.session() as db:
        assert await trusted_browsers.revoke(db, dana.id) == 1
        await db.commit()
    assert await proves(svc, dana, cookie) is None


async def test_expired_trusted_browser_is_refused_at_its_expiry(svc, monkeypatch):
    dana = await add_user(svc, "dana")
    cookie = await trust(svc, dana)
    moment = utcnow() + timedelta(minutes=5)
    await change_device(svc, cookie, expires_at=moment)
    monkeypatch.setattr(trusted_browsers, "utcnow", lambda: moment)
    assert await proves(svc, dana, cookie) is None
    monkeypatch.setattr(trusted_browsers, "utcnow", lambda: moment - timedelta(seconds=1))
    assert await proves(svc, dana, cookie) is not None


async def test_a_browser_leaves_the_list_at_the_moment_it_stops_being_trusted(svc, monkeypatch):
    """The account page shows exactly the browsers that still skip the push: one whose
    trust ran out this instant is not offered as trusted."""
    dana = await add_user(svc, "dana")
    cookie = await trust(svc, dana)
    moment = utcnow() + timedelta(minutes=5)
    await change_device(svc, cookie, expires_at=moment)
    device_id = int(cookie.partition(".")[0])
    for now, shown in ((moment - timedelta(seconds=1), [device_id]), (moment, [])):
        monkeypatch.setattr(trusted_browsers, "utcnow", lambda now=now: now)
        async with svc.db.session() as db:
            assert [d.id for d in await trusted_browsers.listed(db, dana.id)] == shown
        assert (await proves(svc, dana, cookie) is not None) == bool(shown)


async def test_trusted_browser_is_forgotten_after_a_password_change(svc):
    dana = await add_user(svc, "dana")
    cookie = await trust(svc, dana)
    created = (await device_of(svc, cookie)).created_at
    dana.password_changed_at = created - timedelta(seconds=1)
    assert await proves(svc, dana, cookie) is not None
    dana.password_changed_at = created
    assert await proves(svc, dana, cookie) is not None
    dana.password_changed_at = created + timedelta(seconds=1)
    assert await proves(svc, dana, cookie) is None


async def test_using_a_trusted_browser_marks_it_used(svc):
    dana = await add_user(svc, "dana")
    cookie = await trust(svc, dana)
    long_ago = utcnow() - timedelta(days=3)
    await change_device(svc, cookie, last_used_at=long_ago)
    assert await proves(svc, dana, cookie) is not None
    assert (await device_of(svc, cookie)).last_used_at > long_ago + timedelta(days=2)


async def test_trusted_cookie_is_httponly_lax_and_lasts_the_trust_period(svc):
    response = Response()
    trusted_browsers.set_cookie(response, svc.settings, "7.secret")
    header = response.headers["Set-Cookie"]
    assert header.startswith("push2fa_trusted=7.secret;")
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert f"Max-Age={svc.settings.trusted_browser_days * 86400}" in header
    assert ("Secure" in header) == svc.settings.is_https


async def test_trusted_cookie_is_secure_on_https(svc):
    https = dataclasses.replace(svc.settings, public_url="https://login.example.com")
    assert https.is_https
    response = Response()
    trusted_browsers.set_cookie(response, https, "7.secret")
    assert "Secure" in response.headers["Set-Cookie"]


async def test_listed_shows_only_live_browsers_of_that_user_most_recent_first(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    older, newer, gone, expired = [await trust(svc, dana) for _ in range(4)]
    await trust(svc, erin)
    now = utcnow()
    await change_device(svc, older, last_used_at=now - timedelta(days=2))
    await change_device(svc, newer, last_used_at=now - timedelta(days=1))
    await change_device(svc, expired, expires_at=now - timedelta(seconds=1))
    async with svc.db.session() as db:
        await trusted_browsers.revoke(db, dana.id, int(gone.partition(".")[0]))
        await db.commit()
        shown = [device.id for device in await trusted_browsers.listed(db, dana.id)]
    assert shown == [int(newer.partition(".")[0]), int(older.partition(".")[0])]


async def test_revoking_one_browser_leaves_the_others(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    first, second = await trust(svc, dana), await trust(svc, dana)
    erins = await trust(svc, erin)
    async with svc.db.session() as db:
        assert await trusted_browsers.revoke(db, dana.id, int(first.partition(".")[0])) == 1
        await db.commit()
    assert await proves(svc, dana, first) is None
    assert await proves(svc, dana, second) is not None
    assert await proves(svc, erin, erins) is not None


async def test_revoking_another_accounts_browser_by_id_does_nothing(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    erins = await trust(svc, erin)
    async with svc.db.session() as db:
        assert await trusted_browsers.revoke(db, dana.id, int(erins.partition(".")[0])) == 0
        await db.commit()
    assert await proves(svc, erin, erins) is not None


async def test_revoking_all_counts_them_and_records_it_once(svc):
    dana = await add_user(svc, "dana")
    for _ in range(3):
        await trust(svc, dana)
    async with svc.db.session() as db:
        assert await trusted_browsers.revoke(db, dana.id) == 3
        await db.commit()
        assert await trusted_browsers.revoke(db, dana.id) == 0
        await db.commit()
        revoked = (
            await db.execute(
                select(AuditEvent.details).where(
                    AuditEvent.event == "trusted_browser.revoked", AuditEvent.user_id == dana.id
                )
            )
        ).scalars()
        assert [row.get("count") for row in revoked] == [3]


async def test_trusted_cookie_secret_carries_256_bits(svc):
    dana = await add_user(svc, "dana")
    cookies = {await trust(svc, dana) for _ in range(3)}
    secrets = {cookie.partition(".")[2] for cookie in cookies}
    assert len(secrets) == 3
    assert all(len(secret) == 43 for secret in secrets)  # 32 random bytes, URL-safe base64


async def test_issuing_records_who_trusted_which_browser_and_when(svc):
    dana = await add_user(svc, "dana")
    async with svc.db.session() as db:
        cookie = await trusted_browsers.issue(
            db, svc.settings, dana, "2001:db8::" + "f" * 90, CHROME
        )
    stored = await device_of(svc, cookie)
    assert stored.ip == ("2001:db8::" + "f" * 90)[:64]
    assert stored.last_used_at == stored.created_at
    async with svc.db.session() as db:
        added = (
            await db.execute(select(AuditEvent).where(AuditEvent.event == "trusted_browser.added"))
        ).scalar_one()
    assert added.user_id == dana.id and added.details == {"device": stored.id}
