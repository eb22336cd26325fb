"""Whether a login comes from a browser or a place the account has logged in from before,
said on the phone next to the request: "new browser, new place" is the strongest hint a
person gets that the login on their phone is not their own.

A browser is the exact user agent of an earlier successful login; a place is the network
of its address (IPv4 /24, IPv6 /48: the same home or office, whatever the last digits).
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.models import AuditEvent

# Earlier successful logins looked at: enough for months of a person's logins.
RECENT_LOGINS = 500
NEW = "new for your account"
KNOWN = "used before"


def network_of(ip: str) -> str | None:
    """The address's network, as text; None for an unknown or malformed address."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; as IPv6 their /48
        # would be ::/48, one "place" for every IPv4 address there is.
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


async def describe(db: AsyncSession, user_id: int, ip: str, user_agent: str) -> dict[str, str]:
    """Push details (keys of at most 20 characters) saying whether this browser and this
    place are new for the account."""
    rows = (
        await db.execute(
            select(AuditEvent.ip, AuditEvent.user_agent)
            .where(AuditEvent.user_id == user_id, AuditEvent.event == "login.succeeded")
            .order_by(AuditEvent.id.desc())
            .limit(RECENT_LOGINS)
        )
    ).all()
    agent = user_agent[:512]
    here = network_of(ip)
    browser_known = any(row.user_agent == agent for row in rows)
    place_known = here is not None and any(network_of(row.ip or "") == here for row in rows)
    return {
        "This browser": KNOWN if browser_known else NEW,
        "This place": KNOWN if place_known else NEW,
    }
