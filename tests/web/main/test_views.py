"""Home, profile, avatar and edit-profile pages (push2fa/web/main/views.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from quart import Quart
from sqlalchemy import update

from push2fa.domain import recovery_codes
from push2fa.models import User
from push2fa.web.forms import CSRF_ERROR
from tests.conftest import csrf_from, get_csrf, login, register
from tests.web.auth.rows import user_named

TIME_RE = r'<time datetime="([^"]+)" data-format="{fmt}">'


async def text_of(response: Any) -> str:
    return str(await response.get_data(as_text=True))


@pytest.fixture
async def alice(client) -> Any:
    """The client, logged in as alice."""
    await register(client, "alice")
    assert (await login(client, "alice")).status_code == 302
    return client


async def save_about_me(client: Any, text: str, **extra: str) -> Any:
    token = await get_csrf(client, "/profile/edit")
    return await client.post("/profile/edit", form={"csrf_token": token, "about_me": text, **extra})


# --- login required -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/user/alice"),
        ("GET", "/user/nobody"),
        ("GET", "/profile/edit"),
        ("GET", "/user/alice?tab=about"),
    ],
)
async def test_anonymous_visitor_is_sent_to_login_and_back(client, method: str, path: str):
    response = await client.open(path, method=method)

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/auth/login"
    assert parse_qs(location.query)["next"] == [path]


async def test_anonymous_form_submission_is_sent_to_login_without_coming_back(client):
    response = await client.post("/profile/edit", form={})

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/auth/login"
    assert "next" not in parse_qs(location.query)


async def test_login_after_redirect_returns_to_the_page(client):
    await register(client, "alice")
    next_path = parse_qs(urlsplit((await client.get("/user/alice")).headers["Location"]).query)

    response = await login(client, "alice", next=next_path["next"][0])

    assert response.headers["Location"] == "/user/alice"
    assert (await client.get("/user/alice")).status_code == 200


async def test_home_page_is_public(client):
    response = await client.get("/")

    assert response.status_code == 200
    assert "Create an account" in await text_of(response)


# --- profile --------------------------------------------------------------------------------


async def test_profile_shows_avatar_about_me_member_since_and_last_seen(app: Quart, alice):
    await save_about_me(alice, "I like <b>bold</b> security.")

    response = await alice.get("/user/alice")

    assert response.status_code == 200
    page = await text_of(response)
    assert '<img src="/user/alice/avatar.svg"' in page
    assert 'alt="Avatar of alice"' in page
    assert "I like &lt;b&gt;bold&lt;/b&gt; security." in page
    user = await user_named(app, "alice")
    [member_since] = re.findall(TIME_RE.format(fmt="date"), page)
    [last_seen] = re.findall(TIME_RE.format(fmt="relative"), page)
    assert datetime.fromisoformat(member_since) == user.created_at
    seen = datetime.fromisoformat(last_seen)
    assert seen.tzinfo is not None and seen.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - seen) < timedelta(minutes=1)
    assert "Member since" in page and "Last seen" in page


async def test_profile_loads_the_time_script_that_renders_relative_times(alice):
    page = await text_of(await alice.get("/user/alice"))

    assert '<script src="/static/js/time.js" defer></script>' in page
    script = await alice.get("/static/js/time.js")
    assert script.status_code == 200
    assert 'querySelectorAll("time[data-format]")' in await text_of(script)


async def test_last_seen_moves_forward_when_the_user_comes_back(app: Quart, alice):
    long_ago = datetime.now(UTC) - timedelta(days=3)
    async with app.extensions["push2fa"].db.session() as db:
        await db.execute(update(User).where(User.username == "alice").values(last_seen=long_ago))
        await db.commit()

    page = await text_of(await alice.get("/user/alice"))

    [last_seen] = re.findall(TIME_RE.format(fmt="relative"), page)
    assert abs(datetime.now(UTC) - datetime.fromisoformat(last_seen)) < timedelta(minutes=1)


async def test_own_profile_offers_edit_link_and_others_do_not(app: Quart, alice):
    await register(app.test_client(), "bob")

    own = await text_of(await alice.get("/user/alice"))
    other = await text_of(await alice.get("/user/bob"))

    assert 'href="/profile/edit"' in own
    assert 'href="/profile/edit"' not in other
    assert '<img src="/user/bob/avatar.svg"' in other


async def test_profile_url_is_case_insensitive(alice):
    response = await alice.get("/user/ALICE")

    assert response.status_code == 200
    assert '<h1 class="h3">alice</h1>' in await text_of(response)


@pytest.mark.parametrize(
    "username",
    ["nobody", "a" * 65, "a" * 5000, "%3Cscript%3E", "alice%00"],
    ids=["unknown", "65-chars", "5000-chars", "markup", "nul"],
)
async def test_unknown_or_impossible_profile_is_a_404_page(alice, username: str):
    response = await alice.get(f"/user/{username}")

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    page = await text_of(response)
    assert "Page not found" in page
    assert "<script>" not in page


# --- avatar ---------------------------------------------------------------------------------


async def test_avatar_is_a_locally_drawn_svg(client):
    response = await client.get("/user/alice/avatar.svg")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    svg = await text_of(response)
    assert svg.startswith("<svg ")
    assert "<script" not in svg
    assert re.findall(r"https?://[^\"' ]+", svg) == ["http://www.w3.org/2000/svg"]


async def test_avatar_is_stable_per_user_and_differs_between_users(client):
    alice = await text_of(await client.get("/user/alice/avatar.svg"))

    assert alice == await text_of(await client.get("/user/alice/avatar.svg"))
    assert alice == await text_of(await client.get("/user/ALICE/avatar.svg"))
    assert alice != await text_of(await client.get("/user/bob/avatar.svg"))


async def test_avatar_for_over_long_name_is_404(client):
    assert (await client.get(f"/user/{'a' * 65}/avatar.svg")).status_code == 404


# --- edit profile ---------------------------------------------------------------------------


async def test_edit_profile_form_shows_the_current_text(alice):
    await save_about_me(alice, "Hello there")

    page = await text_of(await alice.get("/profile/edit"))

    assert re.search(r"<textarea[^>]*>\s*Hello there</textarea>", page)


async def test_edit_profile_saves_and_returns_to_the_profile(app: Quart, alice):
    response = await save_about_me(alice, "Security engineer, cat person.")

    assert response.status_code == 302
    assert response.headers["Location"] == "/user/alice"
    page = await text_of(await alice.get("/user/alice"))
    assert "Your changes have been saved." in page
    assert "Security engineer, cat person." in page
    assert (await user_named(app, "alice")).about_me == "Security engineer, cat person."


@pytest.mark.parametrize("text", ["x" * 280, "€" * 280, ""], ids=["280", "280-euro", "empty"])
async def test_edit_profile_accepts_up_to_280_characters(app: Quart, alice, text: str):
    await save_about_me(alice, "something before")

    response = await save_about_me(alice, text)

    assert response.status_code == 302
    assert (await user_named(app, "alice")).about_me == text


@pytest.mark.parametrize("size", [281, 100_000])
async def test_edit_profile_refuses_more_than_280_characters(app: Quart, alice, size: int):
    await save_about_me(alice, "kept")

    response = await save_about_me(alice, "x" * size)

    assert response.status_code == 400
    assert "Field cannot be longer than 280 characters." in await text_of(response)
    assert (await user_named(app, "alice")).about_me == "kept"


@pytest.mark.parametrize("token", [None, "forged"])
async def test_edit_profile_without_valid_csrf_token_is_400_and_changes_nothing(
    app: Quart, alice, token: str | None
):
    await save_about_me(alice, "kept")
    form = {"about_me": "changed"} | ({"csrf_token": token} if token else {})

    response = await alice.post("/profile/edit", form=form)

    assert response.status_code == 400
    assert CSRF_ERROR in await text_of(response)
    assert (await user_named(app, "alice")).about_me == "kept"


@pytest.mark.parametrize("text", ["nul \x00 byte", "escape \x1b[31m", "bell \x07", "del \x7f"])
async def test_edit_profile_refuses_control_characters(app: Quart, alice, text: str):
    await save_about_me(alice, "kept")

    response = await save_about_me(alice, text)

    assert response.status_code == 400
    assert "Contains characters that are not allowed." in await text_of(response)
    assert (await user_named(app, "alice")).about_me == "kept"


async def test_edit_profile_keeps_line_breaks_and_tabs(app: Quart, alice):
    assert (await save_about_me(alice, "line one\r\nline\ttwo")).status_code == 302

    assert (await user_named(app, "alice")).about_me == "line one\r\nline\ttwo"


async def test_edit_profile_with_non_utf8_body_is_400_and_changes_nothing(app: Quart, alice):
    await save_about_me(alice, "kept")
    token = csrf_from(await text_of(await alice.get("/profile/edit")))

    response = await alice.post(
        "/profile/edit",
        data=f"csrf_token={token}&about_me=".encode() + b"caf\xe9",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400
    assert (await user_named(app, "alice")).about_me == "kept"


# --- the home dashboard ---------------------------------------------------------------------


def tile(page: str, name: str) -> str:
    found = re.search(rf'id="status-{name}">(.*?)</p>', page, re.S)
    assert found, f"no {name} tile"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


async def test_home_dashboard_with_2fa_off_offers_to_turn_it_on_and_no_danger_zone(alice):
    page = await text_of(await alice.get("/"))

    assert tile(page, "2fa") == "Off" and tile(page, "phones") == "0"
    assert tile(page, "trusted") == "0"
    assert 'id="enable-2fa"' in page
    assert "Danger zone" not in page
    assert 'id="active-sessions"' in page


async def test_home_dashboard_with_2fa_on_counts_and_keeps_turn_off_in_the_danger_zone(
    app: Quart, alice
):
    user = await user_named(app, "alice")
    async with app.extensions["push2fa"].db.session() as db:
        await db.execute(update(User).where(User.id == user.id).values(authy_id=7))
        await db.commit()
        await recovery_codes.regenerate(db, app.extensions["push2fa"].settings, user.id)

    page = await text_of(await alice.get("/"))

    assert tile(page, "2fa") == "On" and tile(page, "phones") == "1"
    assert tile(page, "codes") == "10"
    danger = page[page.index('id="danger-title"') :]
    assert "/auth/2fa/disable" in danger and "/auth/2fa/disable" not in page[: page.index(danger)]


# --- colour modes -----------------------------------------------------------------------------

THEME_FIRST = re.compile(
    r'<head>.*?<script src="[^"]*/theme\.js"></script>.*?<link rel="stylesheet"', re.S
)


@pytest.mark.parametrize("path", ["/", "/auth/login", "/auth/register", "/auth/reset", "/nope"])
async def test_every_page_sets_its_colour_mode_before_the_first_paint(client, path: str):
    page = await text_of(await client.get(path))

    assert THEME_FIRST.search(page), "theme.js must run, undeferred, before any stylesheet"
    assert '<meta name="color-scheme" content="light dark">' in page
