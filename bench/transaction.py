"""`python -m bench.transaction [--decisions 4000]`: the webhook's database transaction
alone, in one process, for a before/after of a change to the state machine or its
statements.

It creates a fresh SQLite database under bench/results/tmp, writes users and pending
challenges, and then decides them one after another exactly as the webhook does after its
signature check: remember the nonce, read the challenge by request uuid and device, apply
the answer (the state machine's UPDATE, the audit row, the commit, the publish). No HTTP,
no sockets: the publisher records nothing. It prints the loop thread's CPU and the wall
time per decision; the first 100 decisions warm up and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import secrets
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import insert

from bench.run import SCRATCH
from push2fa.db import Database
from push2fa.domain import challenges, webhook_nonces
from push2fa.domain.push_answers import apply_answer
from push2fa.migrate import upgrade_url
from push2fa.models import ChallengeStatus, LoginChallenge, User, utcnow
from push2fa.services import Services

WARM_UP = 100


class _Nowhere:
    """A publisher with no sockets: the transaction is what is measured."""

    async def publish_challenge(self, public_id: str, data: Mapping[str, Any]) -> None:
        return None

    async def publish_enrollment(self, user_id: int, data: Mapping[str, Any]) -> None:
        return None


class _Settings:
    uses_emulator = False  # real Authy: no number matching, as in most deployments


class _Services:
    settings = _Settings()
    realtime = _Nowhere()


async def _seed(db: Database, count: int) -> None:
    now = utcnow()
    async with db.session() as session:
        await session.execute(
            insert(User),
            [
                {
                    "username": f"t{i}",
                    "email": f"t{i}@example.com",
                    "password_hash": "x",
                    "authy_id": 1000 + i,
                }
                for i in range(count)
            ],
        )
        await session.execute(
            insert(LoginChallenge),
            [
                {
                    "public_id": challenges.new_public_id(),
                    "user_id": i + 1,
                    "status": ChallengeStatus.PENDING.value,
                    "authy_id": 1000 + i,
                    "provider_uuid": f"uuid-{1000 + i}",
                    "created_at": now,
                    "expires_at": now + timedelta(minutes=30),
                }
                for i in range(count)
            ],
        )
        await session.commit()


async def _decide(db: Database, svc: Services, authy_id: int) -> None:
    async with db.session() as session:
        assert await webhook_nonces.remember(session, str(time.time()), secrets.token_hex(22))
        challenge = await challenges.by_provider(session, f"uuid-{authy_id}", authy_id)
        assert challenge is not None
        decided = await apply_answer(
            session, svc, challenge, ChallengeStatus.APPROVED, None, by="webhook"
        )
        assert decided is not None


async def measure(decisions: int) -> dict[str, float]:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    path = SCRATCH / f"transaction-{secrets.token_hex(4)}.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_url(url)
    db = Database(url)
    svc = cast(Services, _Services())
    try:
        await _seed(db, WARM_UP + decisions)
        for i in range(WARM_UP):
            await _decide(db, svc, 1000 + i)
        gc.collect()
        cpu, wall = time.thread_time(), time.perf_counter()
        for i in range(WARM_UP, WARM_UP + decisions):
            await _decide(db, svc, 1000 + i)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    finally:
        await db.dispose()
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    return {
        "decisions": decisions,
        "loop_cpu_us_per_decision": round(1e6 * cpu / decisions),
        "wall_us_per_decision": round(1e6 * wall / decisions),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transaction", description=__doc__)
    parser.add_argument("--decisions", type=int, default=4000)
    args = parser.parse_args(argv)
    print(asyncio.run(measure(args.decisions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
