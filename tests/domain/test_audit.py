"""The audit log: written with the caller's transaction or not at all, kept for the retention
period, then pruned by the periodic worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from quart import Quart

from push2fa.domain import audit, periodic
from push2fa.models import AuditEvent, utcnow
from push2fa.web.app import create_app
from tests.web.auth.rows import audit_events


async def add_event(app: Quart, name: str, age: timedelta) -> None:
    async with app.extensions["push2fa"].db.session() as db:
        db.add(AuditEvent(event=name, details={}, created_at=utcnow() - age))
        await db.commit()


async def test_events_older_than_the_retention_are_pruned_by_the_worker(overrides: dict[str, Any]):
    app = create_app({**overrides, "audit_retention_days": 30})
    async with app.test_app():
        await add_event(app, "old", timedelta(days=31))
        await add_event(app, "recent", timedelta(days=29))

        await periodic.prune_audit_once(app.extensions["push2fa"])

        assert [event.event for event in await audit_events(app)] == ["recent"]


def test_audit_pruning_is_a_step_of_the_one_periodic_loop_on_its_own_interval():
    steps = dict(periodic.steps())

    assert steps[periodic.prune_audit_once] == periodic.AUDIT_PRUNE_EVERY
    assert periodic.AUDIT_PRUNE_EVERY >= 60 * 60  # not a DELETE every tick


async def test_an_event_is_written_by_its_transactions_commit_and_dropped_by_its_rollback(
    overrides: dict[str, Any],
):
    """A failed change must not leave a history entry saying it happened, nor hand that
    entry to whatever the same session commits next."""
    app = create_app(overrides)
    async with app.test_app():
        async with app.extensions["push2fa"].db.session() as db:
            audit.record(db, "rolled.back", None, origin=("", ""))
            await db.rollback()
            audit.record(db, "committed", None, origin=("", ""), note="kept")
            await db.commit()
            await db.commit()  # a second commit writes nothing twice
        async with app.extensions["push2fa"].db.session() as db:
            audit.record(db, "closed.uncommitted", None, origin=("", ""))

        events = await audit_events(app)
        assert [(event.event, event.details) for event in events] == [
            ("committed", {"note": "kept"})
        ]
