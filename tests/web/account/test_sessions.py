"""Sessions that really end: every login is a server-side record, and a copied cookie is
worth nothing once its session has ended — by logout, by timeout, by a password change or
a report, or from the security page. Each test attacks with a copied cookie."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select, update

from push2fa.domain import reports
from push2fa.models import AuditEvent, User, UserSession, utcnow
from tests.conftest import TEST_SECRET, csrf_from, get_csrf, login, register
from tests.web.auth.rows import login_sessions, user_named

PASSWORD = "correct horse battery"
COOKIES = ("push2fa_auth", "push2fa_session")


def copied_cookies(client: Any) -> dict[str, str]:
    """What a thief takes: every cookie of the site, as it is now."""
    return {c.name: c.value for c in client.cookie_jar if c.name in COOKIES}


def browser_with(app: Quart, cookies: dict[str, str]) -> Any:
    thief = app.test_client()
    for name, value in cookies.items():
        thief.set_cookie("localhost", name, value)
    return thief


async def is_logged_in(client: Any, username: str = "alice") -> bool:
    page = await (await client.get("/")).get_data(as_text=True)
    return f"Hello, {username}!" in page


async def logout(client: Any) -> None:
    token = csrf_from(await (await client.get("/")).get_data(as_text=True))
    response = await client.post("/auth/logout", form={"csrf_token": token})
    assert response.status_code == 302


async def move_session_back(app: Quart, **moves: timedelta) -> None:
    """As if time had passed: move every session's timestamps into the past."""
    async with app.extensions["push2fa"].db.session() as db:
        for row in (await db.execute(select(UserSession))).scalars():
            for column, delta in moves.items():
                setattr(row, column, getattr(row, column) - delta)
        await db.commit()


async def post_security(client: Any, path: str) -> Any:
    token = await get_csrf(client, "/account/security")
    return await client.post(path, form={"csrf_token": token})


# --- logout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("remember", [{}, {"remember": "y"}], ids=["session", "remember-me"])
async def test_cookie_copied_before_logout_is_refused_after_logout(
    app: Quart, client, remember: dict[str, str]
):
    await register(client)
    await login(client, **remember)
    stolen = copied_cookies(client)
    assert await is_logged_in(browser_with(app, stolen))

    await logout(client)

    thief = browser_with(app, stolen)
    assert not await is_logged_in(thief)
    response = await thief.get("/account/security")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    [record] = await login_sessions(app, "alice")
    assert record.ended_reason == "logout"


async def test_login_cookie_carries_a_random_token_not_the_user_id(app: Quart, client):
    await register(client)
    await login(client)
    extension = app.extensions["QUART_AUTH"][0]
    token = extension.load_token(copied_cookies(client)["push2fa_auth"], app=app)
    user = await user_named(app, "alice")
    assert str(user.id) not in token.split(":") and len(token) >= 40
    [record] = await login_sessions(app, "alice")
    assert token not in record.token_hash  # only its hash is stored


async def test_login_cookie_paired_with_another_accounts_session_cookie_is_refused(
    app: Quart, client
):
    """Mallory keeps her own signed session (her CSRF secret, her second-factor freshness)
    and puts Alice's stolen login cookie next to it."""
    await register(client)
    await login(client)
    alices = copied_cookies(client)
    mallory = app.test_client()
    await register(mallory, "mallory")
    await login(mallory, "mallory")

    mallory.set_cookie("localhost", "push2fa_auth", alices["push2fa_auth"])

    assert not await is_logged_in(mallory, "alice")
    assert not await is_logged_in(mallory, "mallory")


# --- timeouts --------------------------------------------------------------------------------


async def test_session_without_remember_me_ends_after_the_idle_time(app: Quart, client):
    await register(client)
    await login(client)
    stolen = copied_cookies(client)
    idle = app.extensions["push2fa"].settings.session_idle_minutes

    await move_session_back(app, last_active_at=timedelta(minutes=idle, seconds=1))

    assert not await is_logged_in(browser_with(app, stolen))
    assert not await is_logged_in(client)
    [record] = await login_sessions(app, "alice")
    assert record.ended_reason == "idle"


async def test_active_session_without_remember_me_ends_after_its_lifetime(app: Quart, client):
    await register(client)
    await login(client)
    stolen = copied_cookies(client)
    hours = app.extensions["push2fa"].settings.session_max_hours

    await move_session_back(app, created_at=timedelta(hours=hours, seconds=1))

    assert not await is_logged_in(browser_with(app, stolen))
    [record] = await login_sessions(app, "alice")
    assert record.ended_reason == "expired"


async def test_session_just_inside_the_idle_time_is_kept_and_touched(app: Quart, client):
    await register(client)
    await login(client)
    idle = app.extensions["push2fa"].settings.session_idle_minutes
    await move_session_back(app, last_active_at=timedelta(minutes=idle - 1))

    assert await is_logged_in(client)
    [record] = await login_sessions(app, "alice")
    assert utcnow() - record.last_active_at < timedelta(minutes=1)


async def test_remember_me_outlives_the_idle_time_but_not_remember_days(app: Quart, client):
    await register(client)
    await login(client, remember="y")
    days = app.extensions["push2fa"].settings.remember_days

    await move_session_back(app, last_active_at=timedelta(days=2), created_at=timedelta(days=2))
    assert await is_logged_in(client)

    await move_session_back(app, created_at=timedelta(days=days))
    assert not await is_logged_in(client)


async def test_last_active_is_written_at_most_once_a_minute(app: Quart, client):
    await register(client)
    await login(client)
    [before] = await login_sessions(app, "alice")
    for _ in range(5):
        await client.get("/")
    [after] = await login_sessions(app, "alice")
    assert after.last_active_at == before.last_active_at


# --- password change, reset, report ------------------------------------------------------------


async def change_password(client: Any, current: str, new: str) -> Any:
    token = await get_csrf(client, "/account/password")
    return await client.post(
        "/account/password",
        form={"csrf_token": token, "current": current, "password": new, "password2": new},
    )


async def test_password_change_ends_every_other_session_and_keeps_this_one(app: Quart, client):
    await register(client)
    laptop = app.test_client()
    await login(laptop, remember="y")
    stolen = copied_cookies(laptop)
    await login(client)

    response = await change_password(client, PASSWORD, "a brand new secret")

    assert response.status_code == 303
    assert await is_logged_in(client)
    assert not await is_logged_in(laptop)
    assert not await is_logged_in(browser_with(app, stolen))
    reasons = [row.ended_reason for row in await login_sessions(app, "alice")]
    assert reasons == ["password_changed", "password_changed", None]


async def test_password_change_to_the_current_password_is_refused(app: Quart, client):
    await register(client)
    await login(client)

    response = await change_password(client, PASSWORD, PASSWORD)

    assert response.status_code == 400
    assert "different from your current one" in await response.get_data(as_text=True)
    [record] = await login_sessions(app, "alice")
    assert record.ended_at is None


def report_path(user_id: int) -> str:
    return f"/account/report/{reports.make_token(TEST_SECRET, user_id)}"


async def post_report(app: Quart, path: str) -> Any:
    stranger = app.test_client()
    token = await get_csrf(stranger, path)
    return await stranger.post(path, form={"csrf_token": token})


async def test_report_ends_every_session(app: Quart, client):
    await register(client)
    await login(client, remember="y")
    stolen = copied_cookies(client)
    user = await user_named(app, "alice")

    await post_report(app, report_path(user.id))

    assert not await is_logged_in(client)
    assert not await is_logged_in(browser_with(app, stolen))
    [record] = await login_sessions(app, "alice")
    assert record.ended_reason == "reported"


async def test_report_link_works_once_and_the_second_use_changes_nothing(app: Quart, client):
    await register(client)
    path = report_path((await user_named(app, "alice")).id)
    await post_report(app, path)
    first = await user_named(app, "alice")
    await login(client)  # the owner, back in and asked for a new password
    replayer = app.test_client()  # the form as it was, posted again
    token = await get_csrf(replayer, "/auth/login")

    second = await replayer.post(path, form={"csrf_token": token})

    assert second.status_code == 303
    async with app.extensions["push2fa"].db.session() as db:
        reported = (
            await db.execute(select(AuditEvent).where(AuditEvent.event == "push.reported"))
        ).all()
    assert len(reported) == 1
    assert (await user_named(app, "alice")).push_blocked_until == first.push_blocked_until
    [owners] = await login_sessions(app, "alice")
    assert owners.ended_at is None  # the owner's new session is not ended again


async def test_report_link_used_twice_says_so(app: Quart):
    await register(app.test_client())
    path = report_path((await user_named(app, "alice")).id)
    await post_report(app, path)
    visitor = app.test_client()

    response = await visitor.get(path, follow_redirects=True)

    assert "already been used" in await response.get_data(as_text=True)


async def test_forced_password_change_after_a_report_refuses_the_current_password(
    app: Quart, client
):
    await register(client)
    await post_report(app, report_path((await user_named(app, "alice")).id))
    response = await login(client)
    assert response.headers["Location"] == "/account/password"

    response = await change_password(client, PASSWORD, PASSWORD)

    assert response.status_code == 400
    assert (await user_named(app, "alice")).must_change_password
    response = await change_password(client, PASSWORD, "not the old one at all")
    assert response.status_code == 303
    assert not (await user_named(app, "alice")).must_change_password


# --- the security page: sessions listed and ended ---------------------------------------------


async def test_security_page_lists_sessions_and_marks_this_browser(app: Quart, client):
    await register(client)
    phone = app.test_client()
    await phone.get("/", headers={"User-Agent": "x"})
    await login(client)
    await login(phone)

    page = await (await client.get("/account/security")).get_data(as_text=True)

    rows = await login_sessions(app, "alice")
    assert all(f'id="session-{row.id}"' in page for row in rows)
    assert page.count("this browser") == 1
    assert 'id="end-other-sessions"' in page


async def test_log_out_one_other_session(app: Quart, client):
    await register(client)
    laptop = app.test_client()
    await login(laptop)
    await login(client)
    laptop_row, _ = await login_sessions(app, "alice")

    response = await post_security(client, f"/account/sessions/{laptop_row.id}/end")

    assert response.status_code == 303
    assert not await is_logged_in(laptop)
    assert await is_logged_in(client)


async def test_log_out_everywhere_else(app: Quart, client):
    await register(client)
    others = [app.test_client() for _ in range(2)]
    for other in others:
        await login(other)
    await login(client)

    await post_security(client, "/account/sessions/end-others")

    assert [await is_logged_in(other) for other in others] == [False, False]
    assert await is_logged_in(client)


async def test_ending_another_accounts_session_is_refused_and_changes_nothing(app: Quart, client):
    await register(client)
    bob = app.test_client()
    await register(bob, "bob")
    await login(bob, "bob")
    [bobs] = await login_sessions(app, "bob")
    await login(client)

    response = await post_security(client, f"/account/sessions/{bobs.id}/end")

    assert response.status_code == 303
    assert await is_logged_in(bob, "bob")
    [bobs] = await login_sessions(app, "bob")
    assert bobs.ended_at is None


async def test_ending_a_session_without_csrf_token_changes_nothing(app: Quart, client):
    await register(client)
    laptop = app.test_client()
    await login(laptop)
    await login(client)
    laptop_row, _ = await login_sessions(app, "alice")
    await client.get("/account/security")

    response = await client.post(f"/account/sessions/{laptop_row.id}/end", form={})

    assert response.status_code == 400  # the one CSRF hook refuses it
    assert await is_logged_in(laptop)


async def test_ending_this_browsers_own_session_logs_it_out(app: Quart, client):
    await register(client)
    await login(client)
    [mine] = await login_sessions(app, "alice")

    await post_security(client, f"/account/sessions/{mine.id}/end")

    assert not await is_logged_in(client)


async def test_ended_sessions_are_not_listed(app: Quart, client):
    await register(client)
    laptop = app.test_client()
    await login(laptop)
    await logout(laptop)
    await login(client)
    async with app.extensions["push2fa"].db.session() as db:
        await db.execute(update(User).values(about_me="x"))
        await db.commit()

    page = await (await client.get("/account/security")).get_data(as_text=True)

    ended, _ = await login_sessions(app, "alice")
    assert f'id="session-{ended.id}"' not in page
