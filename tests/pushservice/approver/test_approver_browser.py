"""The Approver in Chromium: enrol with a virtual passkey, answer requests by signing them.

Each test ends where it matters: the request's status at the push service, and the signed
callback the app's webhook receives (or does not).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.pushservice.approver.conftest import (
    ApproverSite,
    VirtualAuthenticator,
)
from tests.pushservice.conftest import Receiver

PHONE = {"width": 390, "height": 844}


async def enrolled_phone(
    open_page: Any, site: ApproverSite, account: str = "alice", name: str = "phone"
) -> tuple[Any, VirtualAuthenticator]:
    page = await open_page(name, **PHONE)
    authenticator = await VirtualAuthenticator.attach(page)
    await page.goto(site.enrol_url(account))
    await page.locator("#enrol-button").click()
    await page.get_by_text("This phone is added").wait_for()
    assert "#t=" not in page.url  # the token left the address bar
    return page, authenticator


def card(page: Any, uuid: str) -> Any:
    return page.locator(f'article[data-uuid="{uuid}"]')


async def callback_of(receiver: Receiver) -> dict[str, Any]:
    received = await receiver.next_request()
    body = received.body.decode() if received.method == "POST" else received.query_string
    if received.headers.get("Content-Type", "").startswith("application/json"):
        data: dict[str, Any] = json.loads(body)
        return data
    return {k: v[0] for k, v in parse_qs(body).items()}


def answer_of(callback: dict[str, Any]) -> tuple[str, str | None]:
    """The status and reason the app's webhook reads from a callback."""
    transaction = callback["approval_request"].get("transaction") or {}
    return callback["status"], transaction.get("reason") or None


async def test_enrol_then_approve_by_typing_the_number(
    open_page: Any,
    approver_site: ApproverSite,
    receiver: Receiver,
    page_watch: Any,
    screenshot: Any,
) -> None:
    page = await open_page("phone", **PHONE)
    authenticator = await VirtualAuthenticator.attach(page)
    await page.goto(approver_site.enrol_url("alice"))
    await page.locator("#enrol-button").wait_for()
    await screenshot(page, "approver-enrol")
    await page.locator("#enrol-button").click()
    await page.get_by_text("This phone is added").wait_for()
    assert len(await authenticator.credentials()) == 1
    authy_id = await approver_site.authy_user("alice")
    uuid = await approver_site.push(authy_id)
    request = card(page, uuid)
    await request.wait_for()  # live, over Socket.IO
    await request.get_by_text("203.0.113.9").wait_for()
    await request.get_by_text("s left").wait_for()
    await request.locator(".number-input").fill("42")
    await screenshot(page, "approver-request")
    await request.locator(".approve-button").click()
    await page.get_by_text("Approved").wait_for()
    await request.wait_for(state="detached")
    assert await approver_site.status(uuid) == "approved"
    assert answer_of(await callback_of(receiver)) == ("approved", "42")
    page_watch.assert_clean()


async def test_deny_and_report_are_signed_and_reach_the_app(
    open_page: Any, approver_site: ApproverSite, receiver: Receiver
) -> None:
    page, _ = await enrolled_phone(open_page, approver_site)
    authy_id = await approver_site.authy_user("alice")
    denied = await approver_site.push(authy_id)
    await card(page, denied).locator(".deny-button").click()
    await card(page, denied).wait_for(state="detached")
    assert await approver_site.status(denied) == "denied"
    assert answer_of(await callback_of(receiver)) == ("denied", None)
    receiver.arrived.clear()
    reported = await approver_site.push(authy_id)
    await card(page, reported).locator(".report-button").click()
    await page.get_by_text("Reported").wait_for()
    assert await approver_site.status(reported) == "denied"
    assert answer_of(await callback_of(receiver)) == ("denied", "reported")


async def test_a_wrong_number_goes_to_the_app_which_decides(
    open_page: Any, approver_site: ApproverSite, receiver: Receiver
) -> None:
    page, _ = await enrolled_phone(open_page, approver_site)
    uuid = await approver_site.push(await approver_site.authy_user("alice"))
    await card(page, uuid).locator(".number-input").fill("99")
    await card(page, uuid).locator(".approve-button").click()
    await card(page, uuid).wait_for(state="detached")
    # The typed number goes to the app, which compares it with the one it showed.
    assert answer_of(await callback_of(receiver)) == ("approved", "99")


async def test_approve_without_the_number_is_not_sent(
    open_page: Any, approver_site: ApproverSite, receiver: Receiver
) -> None:
    page, _ = await enrolled_phone(open_page, approver_site)
    uuid = await approver_site.push(await approver_site.authy_user("alice"))
    await card(page, uuid).locator(".approve-button").click()
    await page.locator("#messages").get_by_text("Type the number shown").wait_for()
    assert await approver_site.status(uuid) == "pending"
    assert receiver.requests == []


async def test_refused_user_verification_answers_nothing(
    open_page: Any, approver_site: ApproverSite, receiver: Receiver
) -> None:
    page, authenticator = await enrolled_phone(open_page, approver_site)
    uuid = await approver_site.push(await approver_site.authy_user("alice"))
    await authenticator.set_user_verified(False)
    await card(page, uuid).locator(".number-input").fill("42")
    await card(page, uuid).locator(".approve-button").click()
    await page.get_by_text("screen lock was not confirmed").wait_for()
    assert await approver_site.status(uuid) == "pending"
    assert receiver.requests == []


async def test_a_bogus_signature_is_refused(
    open_page: Any, approver_site: ApproverSite, receiver: Receiver
) -> None:
    page, authenticator = await enrolled_phone(open_page, approver_site)
    uuid = await approver_site.push(await approver_site.authy_user("alice"))
    await authenticator.override(isBogusSignature=True)
    await card(page, uuid).locator(".number-input").fill("42")
    await card(page, uuid).locator(".approve-button").click()
    await page.get_by_text("could not be verified").wait_for()
    assert await approver_site.status(uuid) == "pending"
    assert receiver.requests == []


async def test_a_deny_signature_cannot_be_turned_into_an_approval(
    open_page: Any, approver_site: ApproverSite, receiver: Receiver
) -> None:
    """A man in the middle (or a compromised page) rewrites the signed Deny as Approve."""
    page, _ = await enrolled_phone(open_page, approver_site)
    uuid = await approver_site.push(await approver_site.authy_user("alice"))

    async def tamper(route: Any) -> None:
        body = json.loads(route.request.post_data)
        body.update(decision="approve", number="42")
        await route.continue_(post_data=json.dumps(body))

    await page.route("**/decision", tamper)
    await card(page, uuid).locator(".deny-button").click()
    await page.get_by_text("could not be verified").wait_for()
    assert await approver_site.status(uuid) == "pending"
    assert receiver.requests == []


async def test_a_replayed_answer_is_refused(
    open_page: Any, approver_site: ApproverSite, receiver: Receiver
) -> None:
    page, _ = await enrolled_phone(open_page, approver_site)
    authy_id = await approver_site.authy_user("alice")
    first = await approver_site.push(authy_id)
    sent: list[str] = []
    page.on(
        "request",
        lambda r: sent.append(r.post_data) if r.url.endswith("/decision") else None,
    )
    await card(page, first).locator(".deny-button").click()
    await card(page, first).wait_for(state="detached")
    [body] = sent
    url = f"{approver_site.app_url}api/requests/{first}/decision"
    headers = {"Content-Type": "application/json"}
    # The same request again, and the same answer aimed at a new request of the account.
    async with approver_site.http.post(url, data=body, headers=headers) as response:
        assert response.status == 409
    second = await approver_site.push(authy_id)
    other = url.replace(first, second)
    async with approver_site.http.post(other, data=body, headers=headers) as response:
        assert response.status == 409
    assert await approver_site.status(second) == "pending"
    await asyncio.sleep(0.2)
    assert len(receiver.requests) == 1


async def test_a_second_phone_sees_the_request_vanish_when_the_first_answers(
    open_page: Any, approver_site: ApproverSite, receiver: Receiver
) -> None:
    first, _ = await enrolled_phone(open_page, approver_site, name="first")
    second, _ = await enrolled_phone(open_page, approver_site, name="second")
    uuid = await approver_site.push(await approver_site.authy_user("alice"))
    await card(first, uuid).wait_for()
    await card(second, uuid).wait_for()
    await card(second, uuid).locator(".number-input").fill("42")
    await card(second, uuid).locator(".approve-button").click()
    await card(second, uuid).wait_for(state="detached")
    await card(first, uuid).wait_for(state="detached")
    assert await approver_site.status(uuid) == "approved"


async def test_pending_requests_are_fetched_when_the_approver_opens(
    open_page: Any, approver_site: ApproverSite
) -> None:
    page, _ = await enrolled_phone(open_page, approver_site)
    authy_id = await approver_site.authy_user("alice")
    await page.goto("about:blank")
    uuid = await approver_site.push(authy_id)
    await page.goto(approver_site.app_url)
    await card(page, uuid).wait_for()


async def test_a_used_enrolment_link_cannot_add_a_phone_of_another_account(
    open_page: Any, approver_site: ApproverSite
) -> None:
    page = await open_page("phone", **PHONE)
    await VirtualAuthenticator.attach(page)
    await page.goto(f"{approver_site.app_url}#t=not-a-token")
    await page.get_by_text("Could not add the account").wait_for()
    assert await page.locator("#enrol").is_hidden()


async def test_the_authy_qr_text_is_accepted(open_page: Any, approver_site: ApproverSite) -> None:
    from tests.pushservice.conftest import registration_token

    page = await open_page("phone", **PHONE)
    await VirtualAuthenticator.attach(page)
    await page.goto(approver_site.app_url)
    await page.locator("#link-input").fill(f"authy://account?token={registration_token('bob')}")
    await page.get_by_role("button", name="Use").click()
    await page.locator("#enrol-button").click()
    await page.get_by_text("This phone is added").wait_for()
    assert await approver_site.authy_user("bob") > 0


async def test_a_push_shows_a_notification_naming_no_number(
    open_page: Any, approver_site: ApproverSite
) -> None:
    page, _ = await enrolled_phone(open_page, approver_site)
    await page.context.grant_permissions(["notifications"], origin=approver_site.url)
    assert await page.evaluate("navigator.serviceWorker.ready.then(r => !!r.active)")
    cdp = await page.context.new_cdp_session(page)
    registrations: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.put_nowait(e))
    await cdp.send("ServiceWorker.enable")
    registration_id = None
    while registration_id is None:
        event = await asyncio.wait_for(registrations.get(), 5)
        for registration in event["registrations"]:
            if registration["scopeURL"].endswith("/_emulator/approver/"):
                registration_id = registration["registrationId"]
    await cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": approver_site.url,
            "registrationId": registration_id,
            "data": json.dumps({"v": 1, "request": "req-7"}),
        },
    )
    shown_list: list[dict[str, str]] = []
    for _ in range(50):
        shown_list = await page.evaluate(
            """() => navigator.serviceWorker.getRegistration('/_emulator/approver/')
                .then(r => r.getNotifications())
                .then(list => list.map(n => ({title: n.title, body: n.body, tag: n.tag})))"""
        )
        if shown_list:
            break
        await asyncio.sleep(0.1)
    [shown] = shown_list
    assert shown["tag"] == "req-7"
    assert shown["title"] == "Sign-in request"
    assert "approve" in shown["body"]
    assert not any(ch.isdigit() for ch in shown["body"])


@pytest.mark.parametrize("width", [390])
async def test_the_approver_fits_one_thumb_on_a_phone(
    open_page: Any, approver_site: ApproverSite, width: int
) -> None:
    page, _ = await enrolled_phone(open_page, approver_site)
    uuid = await approver_site.push(await approver_site.authy_user("alice"))
    await card(page, uuid).wait_for()
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width
    box = await card(page, uuid).locator(".approve-button").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 300


SUBSCRIBE_JS = """
async ([subscription]) => {
  const [entry] = JSON.parse(localStorage.getItem("push2fa.approver.credentials"));
  const response = await fetch("/_emulator/approver/api/subscription", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({credential: entry.credential, subscription}),
  });
  return [response.status, entry.credential];
}
"""


async def test_an_enrolled_phone_with_a_subscription_is_woken_by_web_push(
    open_page: Any, approver_site: ApproverSite
) -> None:
    """Headless Chromium cannot subscribe, so the phone hands over a subscription of the
    fake push service, which decrypts what push2fa sends it."""
    from tests.pushservice.approver.fake_push import fake_push_service

    page, _ = await enrolled_phone(open_page, approver_site)
    async with fake_push_service() as push_service:
        phone = push_service.new_phone()
        status, credential = await page.evaluate(SUBSCRIBE_JS, [phone.subscription()])
        assert status == 200
        uuid = await approver_site.push(await approver_site.authy_user("alice"), ttl=60)
        for _ in range(100):
            if push_service.delivered:
                break
            await asyncio.sleep(0.05)
        assert push_service.payloads() == [{"v": 1, "request": uuid}]
        assert push_service.delivered[0].vapid_ok
        # Another browser that knows the passkey's id (not secret) cannot redirect pushes.
        thief = await open_page("thief", **PHONE)
        await thief.goto(approver_site.app_url)
        stolen = push_service.new_phone()
        status = await thief.evaluate(
            """async ([credential, subscription]) => (await fetch(
                 "/_emulator/approver/api/subscription", {method: "POST",
                 headers: {"Content-Type": "application/json"},
                 body: JSON.stringify({credential, subscription})})).status""",
            [credential, stolen.subscription()],
        )
        assert status == 403
        await approver_site.push(await approver_site.authy_user("alice"), ttl=60)
        for _ in range(100):
            if len(push_service.delivered) == 2:
                break
            await asyncio.sleep(0.05)
        assert [d.path for d in push_service.delivered] == [
            phone.endpoint.split(push_service.url)[1]
        ] * 2


async def test_an_authenticator_that_skips_user_verification_is_refused_by_the_server(
    open_page: Any, approver_site: ApproverSite, receiver: Receiver
) -> None:
    """The authenticator answers without the UV flag (a lying or weak authenticator): the
    browser passes it on; the server's rule is what refuses it."""
    page, authenticator = await enrolled_phone(open_page, approver_site)
    uuid = await approver_site.push(await approver_site.authy_user("alice"))
    await authenticator.override(isBadUV=True)
    await card(page, uuid).locator(".deny-button").click()
    await page.get_by_text("could not be verified").wait_for()
    assert await approver_site.status(uuid) == "pending"
    assert receiver.requests == []


async def test_an_expired_request_vanishes_from_the_phone(
    open_page: Any, approver_site: ApproverSite
) -> None:
    page, _ = await enrolled_phone(open_page, approver_site)
    uuid = await approver_site.push(await approver_site.authy_user("alice"), ttl=2)
    await card(page, uuid).wait_for()
    await card(page, uuid).wait_for(state="detached", timeout=5000)
    await page.reload()
    await page.locator("#no-requests").wait_for()
    assert await card(page, uuid).count() == 0


async def test_a_tapped_notification_opens_its_request_ready_for_the_number(
    open_page: Any, approver_site: ApproverSite
) -> None:
    """What the service worker's notificationclick opens (CDP cannot click one)."""
    page, _ = await enrolled_phone(open_page, approver_site)
    uuid = await approver_site.push(await approver_site.authy_user("alice"))
    await page.goto(f"{approver_site.app_url}?request={uuid}")
    request = card(page, uuid)
    await request.wait_for()
    # A locator, not wait_for_function: that evaluates a string, which the Approver's CSP
    # (no 'unsafe-eval') can refuse when the page reloads during the wait.
    await page.locator("#approver[data-ready='true']").wait_for(state="attached")
    assert "is-new" in (await request.get_attribute("class") or "")
    assert await request.locator(".number-input").evaluate("el => el === document.activeElement")
