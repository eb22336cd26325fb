"""Phones on an account: when the Approver can enrol one, and telling the owner about
every phone added or removed (a phone approves logins, so a hidden one is a back door)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from quart import current_app, has_app_context
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa import mail
from push2fa.authy.client import AuthyClient, PhoneDevice
from push2fa.authy.errors import AuthyError
from push2fa.config import Settings
from push2fa.domain import audit
from push2fa.models import User

log = logging.getLogger(__name__)

ADDED = "phone.added"
REMOVED = "phone.removed"


def approver_possible(settings: Settings) -> bool:
    """WebAuthn refuses IP-address sites and plain http other than localhost: there the
    Approver is off (emulation.approver_settings says so in the log)."""
    from push2fa.webauthn import RelyingParty

    try:
        RelyingParty.for_public_url(settings.push_api_url, settings.authy_app_name)
    except ValueError:
        return False
    return True


def _settings() -> Settings | None:
    """The app's settings where this runs inside it (requests, and background jobs,
    which keep the app's context)."""
    if not has_app_context() or "push2fa" not in current_app.extensions:
        return None
    settings: Settings = current_app.extensions["push2fa"].settings
    return settings


async def tell_owner(db: AsyncSession, user_id: int, what: Literal["added", "removed"]) -> None:
    """E-mail the account's owner that a phone was added or removed."""
    settings = _settings()
    user = await db.get(User, user_id)
    if settings is None or user is None:
        log.warning("phone %s for user %s: no mail sent (outside the app)", what, user_id)
        return
    if what == "added":
        subject = "A new phone was added to your push2fa account"
        body = (
            f"Hello {user.username},\n\nA phone was just added to your account: from now on "
            "it can approve your logins. If this was not you, someone knows your password: "
            f"remove the phone and change your password at {settings.public_url}/account/security\n"
        )
    else:
        subject = "A phone was removed from your push2fa account"
        body = (
            f"Hello {user.username},\n\nA phone was just removed from your account: it can no "
            "longer approve your logins. If this was not you, change your password at "
            f"{settings.public_url}/account/security\n"
        )
    # Sent in the background (the app waits for it at shutdown): nobody waits for SMTP.
    current_app.add_background_task(mail.send_mail, settings, user.email, subject, body)


@dataclass(frozen=True)
class Listing:
    """The account's phones, or why they could not be listed."""

    phones: list[PhoneDevice]
    problem: str | None = None


async def listed(settings: Settings, client: AuthyClient, user: User) -> Listing | None:
    """The phones at push2fa's own push service; None where there is nothing to list (2FA
    off, or real Authy, whose API has no device list)."""
    if not settings.uses_emulator or user.authy_id is None:
        return None
    try:
        return Listing(await client.list_devices(user.authy_id))
    except AuthyError as exc:
        log.warning("listing phones of user %s failed: %s", user.id, exc)
        return Listing([], "The list of phones could not be fetched; try again in a moment.")


async def remove(db: AsyncSession, client: AuthyClient, user: User, device_id: int) -> str | None:
    """Remove one of the user's phones at once; None when done, else what went wrong. The
    push service only looks among this user's phones, so another account's id is refused."""
    if user.authy_id is None:
        return "Push two-factor login is off."
    try:
        await client.remove_device(user.authy_id, device_id)
    except AuthyError as exc:
        if exc.status == 404:
            return "That phone is not one of yours, or it was removed already."
        log.warning("removing phone %s of user %s failed: %s", device_id, user.id, exc)
        return "The phone could not be removed; try again in a moment."
    audit.record(db, REMOVED, user.id, device=device_id)
    await db.commit()
    await tell_owner(db, user.id, "removed")
    return None


async def test_push(client: AuthyClient, user: User, device_id: int) -> tuple[str, str]:
    """Send a test notification; returns (flash category, message)."""
    if user.authy_id is None:
        return "warning", "Push two-factor login is off."
    try:
        outcome = await client.test_push(user.authy_id, device_id)
    except AuthyError as exc:
        if exc.status == 404:
            return "warning", "That phone is not one of yours, or it was removed."
        return "danger", "The test push could not be sent; try again in a moment."
    return _TEST_PUSH_WORDS.get(outcome, ("warning", "The push service did not take it."))


_TEST_PUSH_WORDS = {
    "delivered": ("success", "Test push sent: a notification should appear on the phone."),
    "no-subscription": (
        "warning",
        "This phone has no notifications turned on: open the Approver on it and allow them.",
    ),
    "gone": ("warning", "The phone's notification subscription is gone: open the Approver."),
    "retry_later": ("warning", "The phone's push service is busy; try again later."),
}
