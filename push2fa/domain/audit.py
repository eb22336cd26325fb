"""The security history: one row per security-relevant event, plus a log line.

Callers pass what happened and to whom; the request's IP and browser are added here so
every event carries them the same way. Details must never contain secrets.

Rows are kept on the session and written by one INSERT when it commits, the caller's
transaction: all of them or none (a rollback drops them). An ORM object per row cost the
webhook more Python than its UPDATE (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from quart import has_request_context, request
from sqlalchemy import delete, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from push2fa.models import AuditEvent, utcnow

log = logging.getLogger("push2fa.audit")

_PENDING = "push2fa.audit.pending"  # the session.info key of the rows not yet written
_INSERT = insert(AuditEvent.metadata.tables[AuditEvent.__tablename__])


def request_context() -> tuple[str, str]:
    if not has_request_context():
        return "", ""
    return (request.remote_addr or "")[:64], (request.headers.get("User-Agent") or "")[:512]


def record(
    session: AsyncSession,
    event: str,
    user_id: int | None = None,
    *,
    origin: tuple[str, str] | None = None,
    **details: Any,
) -> None:
    """Add an audit row to `session`'s transaction: written when it commits.

    `origin` (ip, user agent) overrides the current request's: a push answered through the
    webhook is about the login attempt, not about the push service that called us."""
    ip, agent = origin if origin is not None else request_context()
    row = {
        "user_id": user_id,
        "event": event,
        "ip": ip,
        "user_agent": agent,
        "details": details,
        "created_at": utcnow(),
    }
    if not session.in_transaction():
        # The rows belong to a transaction, so a rollback before any statement ran still
        # drops them (no I/O: the connection is taken when the first statement needs it).
        session.sync_session.begin()
    session.info.setdefault(_PENDING, []).append(row)
    log.info(
        "%s user=%s ip=%s %s",
        event,
        user_id if user_id is not None else "-",
        ip or "-",
        " ".join(f"{k}={v}" for k, v in details.items()),
    )


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Write the transaction's rows first, so whatever the commit's flush then deletes
    (an account, with its history) takes them along, as it did when they were objects."""
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.execute(_INSERT, rows)


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    """A transaction that ended without committing (rolled back, closed) takes its rows
    with it; a savepoint's end leaves the outer transaction's rows alone."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


async def prune(session: AsyncSession, retention_days: int) -> int:
    """Delete events older than the retention period; returns how many. The history is
    kept long enough to investigate, not for ever (PUSH2FA_AUDIT_RETENTION_DAYS)."""
    cutoff = utcnow() - timedelta(days=retention_days)
    result = await session.execute(delete(AuditEvent).where(AuditEvent.created_at < cutoff))
    await session.commit()
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.info("pruned %s audit events older than %s days", count, retention_days)
    return count
