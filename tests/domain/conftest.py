"""Fixtures shared by the domain tests."""

from __future__ import annotations

import asyncio

import pytest

from push2fa.services import Services


@pytest.fixture
def svc(app) -> Services:
    """The running app's services (database, settings, realtime)."""
    services: Services = app.extensions["push2fa"]
    return services


@pytest.fixture
async def background_stopped(svc: Services) -> None:
    """Stop the app's background loops (sweep, status poll, enrolment watch), so that only
    the test drives transitions. A module opts in with
    `pytestmark = pytest.mark.usefixtures("background_stopped")`."""
    for task in svc.tasks:
        task.cancel()
    await asyncio.gather(*svc.tasks, return_exceptions=True)
    svc.tasks.clear()
