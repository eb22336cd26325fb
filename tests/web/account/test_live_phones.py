"""The phones on the security page, against a live site and a separate push service:
listed, removed at once (and mailed), a test push, and another account's phone refused."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from tests.web.auth.mailbox import outbox_messages
from tests.web.twofa.conftest import API_KEY  # noqa: F401  (the site's push service key)

KEY = {"X-Authy-API-Key": API_KEY}


async def devices_of(site: Any, authy_id: int) -> list[dict[str, Any]]:
    url = f"{site.emulator}/protected/json/users/{authy_id}/devices"
    async with site.http.get(url, headers=KEY) as response:
        assert response.status == 200, await response.text()
        found: list[dict[str, Any]] = (await response.json())["devices"]
        return found


async def mail_subjects(site: Any, want: str) -> list[str]:
    instance = site.app.extensions["push2fa"].settings.instance_path
    deadline = time.monotonic() + 5
    subjects: list[str] = []
    while time.monotonic() < deadline:
        subjects = [str(m["Subject"]) for m in outbox_messages(instance)]
        if any(want in s for s in subjects):
            return subjects
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail with {want!r}; outbox has {subjects}")


async def test_the_security_page_lists_the_phone_and_removes_it_at_once(site, browsers):
    alice = browsers()
    await alice.register("alice")
    await alice.login("alice")
    authy_id = await alice.enable_push()
    [device] = await devices_of(site, authy_id)

    await alice.get("/account/security")
    listed = re.search(rf'id="phone-{device["id"]}".*?</li>', alice.last_html, re.S)
    assert listed, alice.last_html
    assert "development phone, no passkey" in listed.group(0)
    assert "Send a test push" in listed.group(0) and "Remove" in listed.group(0)

    # A pending request to the phone is withdrawn with it: nothing waits on a lost phone.
    async with site.http.post(
        f"{site.emulator}/onetouch/json/users/{authy_id}/approval_requests",
        json={"message": "Log in?"},
        headers=KEY,
    ) as response:
        uuid = (await response.json())["approval_request"]["uuid"]

    await alice.post_form(f"/account/phones/{device['id']}/test-push", {}, page="/account/security")
    assert "no notifications turned on" in alice.last_html

    await alice.post_form(f"/account/phones/{device['id']}/remove", {}, page="/account/security")
    assert "Phone removed" in alice.last_html
    assert f'id="phone-{device["id"]}"' not in alice.last_html
    assert "No phone approves your logins" in alice.last_html
    assert await devices_of(site, authy_id) == []
    async with site.http.get(
        f"{site.emulator}/onetouch/json/approval_requests/{uuid}", headers=KEY
    ) as response:
        assert (await response.json())["approval_request"]["status"] != "pending"
    await alice.get("/account/security")
    assert "Phone removed" in alice.last_html  # in the security history
    subjects = await mail_subjects(site, "A phone was removed")
    assert any("new phone" in s.lower() for s in subjects)  # and the add was mailed too


async def test_removing_another_accounts_phone_is_refused(site, browsers):
    """Mallory, logged in to her own account, posts Bob's phone id (ids are guessable
    enough: she may have seen one in a screenshot). The push service only looks among
    Mallory's phones: Bob's phone stays and keeps approving."""
    bob = browsers()
    await bob.register("bob")
    await bob.login("bob")
    bob_authy = await bob.enable_push()
    [bob_phone] = await devices_of(site, bob_authy)

    mallory = browsers()
    await mallory.register("mallory")
    await mallory.login("mallory")
    mallory_authy = await mallory.enable_push()

    for action in ("remove", "test-push"):
        await mallory.post_form(
            f"/account/phones/{bob_phone['id']}/{action}", {}, page="/account/security"
        )
        assert "not one of yours" in mallory.last_html
    assert [d["id"] for d in await devices_of(site, bob_authy)] == [bob_phone["id"]]
    assert len(await devices_of(site, mallory_authy)) == 1
    # Straight at the push service with Mallory's authy id and Bob's device: 404 too.
    url = f"{site.emulator}/protected/json/users/{mallory_authy}/devices/{bob_phone['id']}/remove"
    async with site.http.post(url, json={}, headers=KEY) as response:
        assert response.status == 404
    assert [d["id"] for d in await devices_of(site, bob_authy)] == [bob_phone["id"]]


async def test_a_session_without_a_fresh_second_factor_cannot_remove_the_phone(site, browsers):
    """A stolen cookie of a session that gave no second factor lately (here: a trusted
    browser's login, enrolled an hour ago) asks the phone first; the phone stays."""
    from tests.web.twofa.test_live_push import _age_second_factor

    alice = browsers()
    await alice.register("alice")
    await alice.login("alice")
    authy_id = await alice.enable_push()
    [device] = await devices_of(site, authy_id)
    await alice.logout()
    await _age_second_factor(site, alice, authy_id)

    resp = await alice.post_form(
        f"/account/phones/{device['id']}/remove", {}, page="/account/security"
    )

    assert resp.url.path == "/auth/2fa/wait"  # the phone is asked to confirm first
    assert [d["id"] for d in await devices_of(site, authy_id)] == [device["id"]]
