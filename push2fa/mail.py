"""Outgoing mail: SMTP when configured, otherwise the development outbox.

Without SMTP settings the message is written to `instance/outbox/` (and, in development
only, to the log) so that the reset flow works on a laptop with no mail server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from quart import current_app, has_app_context

from push2fa import mail_budget
from push2fa.config import Settings

log = logging.getLogger("push2fa.mail")


def build_message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def _send_smtp(settings: Settings, message: EmailMessage) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


def _write_outbox(settings: Settings, message: EmailMessage) -> Path:
    outbox = Path(settings.instance_path) / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    # Microsecond UTC timestamps, so that sorting the names lists the mails in sent order.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = outbox / f"{stamp}-{os.urandom(4).hex()}.eml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(bytes(message))
    return path


async def _within_hourly_limit(settings: Settings, to: str) -> bool:
    """Claim a slot of the address's hourly mail budget, when sent from inside the app
    (background tasks keep its context); a script without the app has no database."""
    if not has_app_context() or "push2fa" not in current_app.extensions:
        return True
    async with current_app.extensions["push2fa"].db.session() as db:
        return await mail_budget.claim(
            db, settings.secret_key, to, settings.mail_per_address_per_hour
        )


async def send_mail(settings: Settings, to: str, subject: str, body: str) -> None:
    """Deliver a plain-text mail; failures are logged, never shown to the requester.
    Beyond PUSH2FA_MAIL_PER_ADDRESS_PER_HOUR mails to one address, it is dropped."""
    if not await _within_hourly_limit(settings, to):
        log.warning(
            "mail not sent: over %s to one address this hour (subject=%r)",
            settings.mail_per_address_per_hour,
            subject,
        )
        return
    try:
        # Building fails (ValueError) on a header with a line break: never inject headers.
        message = build_message(settings, to, subject, body)
        if settings.smtp_host:
            await asyncio.to_thread(_send_smtp, settings, message)
            log.info("mail sent subject=%r", subject)
            return
        path = await asyncio.to_thread(_write_outbox, settings, message)
        if settings.is_production:
            log.warning("no SMTP configured; mail written to %s", path)
        else:
            log.info("development mail (no SMTP configured), also in %s:\n%s", path, body)
    except (OSError, ValueError, smtplib.SMTPException) as exc:
        log.error("mail delivery failed: %s", type(exc).__name__)
