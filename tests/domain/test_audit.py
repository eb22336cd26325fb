"""The audit log is kept for the retention period, then pruned by the periodic worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from quart import Quart

from push2fa.domain import periodic
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
