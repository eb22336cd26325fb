"""Phones on an account: when the Approver can enrol one, and telling the owner about
every phone added or removed (a phone approves logins, so a hidden one is a back door)."""

from __future__ import annotations

import logging
from typing import Literal

from quart import current_app, has_app_context
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa import mail
from push2fa.config import Settings
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
