"""Fixtures shared by the domain tests."""

from __future__ import annotations

import pytest

from push2fa.services import Services


@pytest.fixture
def svc(app) -> Services:
    """The running app's services (database, settings, realtime)."""
    services: Services = app.extensions["push2fa"]
    return services
