"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

from quart import Blueprint

from push2fa import services
from push2fa.limits import rate_exempt
from push2fa.policy import public

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
@public
@rate_exempt  # probes from the load balancer
async def healthz() -> tuple[dict[str, str], int]:
    """The process is up and its event loop answers."""
    return {"status": "ok"}, 200


@blueprint.get("/readyz")
@public
@rate_exempt  # probes from the load balancer
async def readyz() -> tuple[dict[str, object], int]:
    """Ready to serve: the database answers (and later, the fan-out broker)."""
    checks = await services.current().readiness()
    ready = all(checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
