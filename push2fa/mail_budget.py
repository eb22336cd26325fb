"""At most N mails to one address per hour, whatever asks for them.

Reset requests, "someone tried to register with your address" and alerts can all be set
off by a stranger who knows only an address; without a limit the site becomes a tool to
flood someone's inbox (and to burn the sender's reputation). Every mail claims a slot
before it is sent. The slot is written first and counted after, so that under parallel
requests the last to count sees all the others: the limit fails closed (a refused claim
deletes its row again, so refusals do not extend the block).

Addresses are stored only as a keyed hash: this table says nothing about who has an
account.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.models import MailSent, utcnow

WINDOW = timedelta(hours=1)


def address_key(secret_key: str, address: str) -> str:
    normalised = address.strip().lower().encode()
    return hmac.new(secret_key.encode(), b"mail|" + normalised, hashlib.sha256).hexdigest()


async def claim(db: AsyncSession, secret_key: str, address: str, per_hour: int) -> bool:
    """Take one of the address's mails for this hour; False when they are all taken."""
    key = address_key(secret_key, address)
    slot = MailSent(address_key=key, sent_at=utcnow())
    db.add(slot)
    await db.commit()
    since = utcnow() - WINDOW
    taken = (
        await db.execute(
            select(func.count(MailSent.id)).where(
                MailSent.address_key == key, MailSent.sent_at > since
            )
        )
    ).scalar_one()
    if taken <= per_hour:
        return True
    await db.execute(delete(MailSent).where(MailSent.id == slot.id))
    await db.commit()
    return False


async def prune(db: AsyncSession) -> int:
    """Forget sends older than the window: they no longer count."""
    result = await db.execute(delete(MailSent).where(MailSent.sent_at <= utcnow() - WINDOW))
    await db.commit()
    return int(getattr(result, "rowcount", 0) or 0)
