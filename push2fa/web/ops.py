"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

from quart import Blueprint

from push2fa import services
from push2fa.web.limits import rate_exempt
from push2fa.web.policy import public

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
    """Ready to serve: the database answers and the process is not shutting down. A
    failing Redis is reported as `degraded` but keeps the process in rotation (see
    services.DEGRADED_ONLY_CHECKS)."""
    checks = await services.current().readiness()
    ready = all(ok for name, ok in checks.items() if name not in services.DEGRADED_ONLY_CHECKS)
    status = "unavailable" if not ready else "ok" if all(checks.values()) else "degraded"
    return {"status": status, "checks": checks}, 200 if ready else 503
