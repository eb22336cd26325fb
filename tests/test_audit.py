"""The audit log is kept for the retention period, then pruned by the periodic worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from quart import Quart

from push2fa import workers
from push2fa.app import create_app
from push2fa.models import AuditEvent, utcnow
from tests.auth.rows import audit_events


async def add_event(app: Quart, name: str, age: timedelta) -> None:
    async with app.extensions["push2fa"].db.session() as db:
        db.add(AuditEvent(event=name, details={}, created_at=utcnow() - age))
        await db.commit()


async def test_events_older_than_the_retention_are_pruned_by_the_worker(overrides: dict[str, Any]):
    app = create_app({**overrides, "audit_retention_days": 30})
    async with app.test_app():
        await add_event(app, "old", timedelta(days=31))
        await add_event(app, "recent", timedelta(days=29))

        await workers.prune_audit_once(app.extensions["push2fa"])

        assert [event.event for event in await audit_events(app)] == ["recent"]


def test_audit_pruning_is_a_step_of_the_one_periodic_loop_on_its_own_interval():
    steps = dict(workers.STEPS)

    assert steps[workers.prune_audit_once] == workers.AUDIT_PRUNE_EVERY
    assert workers.AUDIT_PRUNE_EVERY >= 60 * 60  # not a DELETE every tick
