"""Mail to the account's owner about what just happened to it: a login from a new browser
(with the "this wasn't me" link) and every sensitive change. Sent in the background so a
page never waits on SMTP."""

from __future__ import annotations

from quart import current_app, url_for
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa import mail
from push2fa.config import Settings
from push2fa.domain import audit, reports
from push2fa.domain.useragent import describe
from push2fa.models import AuditEvent, User, utcnow


def send(settings: Settings, user: User, subject: str, body: str) -> None:
    current_app.add_background_task(mail.send_mail, settings, user.email, subject, body)


def report_link(settings: Settings, user: User) -> str:
    token = reports.make_token(settings.secret_key, user.id)
    return settings.public_url + url_for("account.report", token=token)


async def new_login(db: AsyncSession, settings: Settings, user: User) -> None:
    """Tell the user about a login from a browser and address not seen before, with a link
    to report it. Runs after the login's audit row is written."""
    ip, agent = audit.request_context()
    seen = (
        await db.execute(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.user_id == user.id,
                # The browser that created the account is not new to it.
                AuditEvent.event.in_(("login.succeeded", "account.registered")),
                AuditEvent.ip == ip,
                AuditEvent.user_agent == agent,
            )
        )
    ).scalar_one()
    if seen > 1:
        return
    body = (
        f"Hello {user.username},\n\nYour account was just logged in to from a new browser:\n\n"
        f"  Browser: {describe(agent)}\n  IP address: {ip or 'unknown'}\n"
        f"  Time: {utcnow():%Y-%m-%d %H:%M UTC}\n\n"
        f"If this was you, there is nothing to do. If it was not you, report it here; this "
        f"ends every session, pauses push requests and asks for a new password:\n\n"
        f"{report_link(settings, user)}\n"
    )
    send(settings, user, "New login to your push2fa account", body)


def sensitive_change(settings: Settings, user: User, what: str) -> None:
    """E.g. what="Your password was changed": said by mail, with where it came from."""
    ip, agent = audit.request_context()
    body = (
        f"Hello {user.username},\n\n{what}.\n\n"
        f"  Browser: {describe(agent)}\n  IP address: {ip or 'unknown'}\n"
        f"  Time: {utcnow():%Y-%m-%d %H:%M UTC}\n\n"
        "If this was not you, report it here at once; this ends every session, pauses push "
        f"requests and asks for a new password:\n\n{report_link(settings, user)}\n"
    )
    send(settings, user, f"{what} on your push2fa account", body)
