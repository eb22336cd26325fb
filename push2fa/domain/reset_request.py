"""A password-reset request, answered the same way whether or not the address has an
account.

The page must not tell a stranger which addresses have accounts, by its text or by its
timing. So the request only hands the typed address to a background task and answers at
once: the same work on the request path for every address. Looking the account up, the
audit row, the token and the mail all happen after the answer is on its way.
"""

from __future__ import annotations

import asyncio

from push2fa import mail
from push2fa.domain import audit
from push2fa.domain.reset_tokens import make_reset_token
from push2fa.domain.users import find_by_login
from push2fa.services import Services

SUBJECT = "Reset your push2fa password"
# The task starts after this pause, so that its work (more of it for a known address)
# does not share the event loop with the answer it follows.
AFTER_THE_ANSWER = 0.05


async def send_reset_link(
    svc: Services, address: str, origin: tuple[str, str], reset_path: str
) -> None:
    """Mail a reset link to the account with `address`, if there is one; record the
    request either way. `reset_path` is the reset URL's path without its token."""
    await asyncio.sleep(AFTER_THE_ANSWER)
    async with svc.db.session() as db:
        user = await find_by_login(db, address)
        audit.record(db, "password.reset_requested", user.id if user else None, origin=origin)
        await db.commit()
    if user is None:
        return
    link = f"{svc.settings.public_url}{reset_path}{make_reset_token(svc.settings.secret_key, user)}"
    await mail.send_mail(
        svc.settings,
        user.email,
        SUBJECT,
        f"Hello {user.username},\n\nTo choose a new password, open this link within "
        f"30 minutes:\n\n{link}\n\nIf you did not ask for this, ignore this message; "
        "your password stays as it is.\n",
    )
