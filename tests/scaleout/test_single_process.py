"""Without Redis the Socket.IO rooms live in one process's memory, so only one process may
serve: a second one, however it was started, refuses to start and says why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from quart.testing.app import LifespanError

from push2fa.web.app import create_app
from tests.scaleout.cluster import clean_environ, listener

HYPERCORN = Path(sys.executable).parent / "hypercorn"


async def test_second_app_on_the_same_instance_without_redis_refuses_to_start(
    overrides: dict[str, Any],
):
    first = create_app(overrides)
    async with first.test_app():
        second = create_app(overrides)
        with pytest.raises(LifespanError, match="PUSH2FA_REDIS_URL"):
            async with second.test_app():
                pass
    third = create_app(overrides)  # the first one has stopped: the instance is free again
    async with third.test_app():
        pass


async def test_apps_sharing_redis_may_serve_the_same_instance_together(
    overrides: dict[str, Any], shared_redis_url: str
):
    overrides["redis_url"] = shared_redis_url
    async with create_app(overrides).test_app(), create_app(overrides).test_app():
        pass


def test_hypercorn_with_two_workers_and_no_redis_stops_saying_why(tmp_path: Path):
    """Plain `hypercorn -w 2`, which push2fa's CLI check never sees. One worker refuses to
    start, and Hypercorn then stops them all (its exit status is 0 even so: Hypercorn
    reports the exit status of the workers it terminated, not of the one that failed)."""
    sock = listener()
    fd = sock.fileno()
    env = clean_environ({"PUSH2FA_INSTANCE_PATH": str(tmp_path / "instance")})
    finished = subprocess.run(
        [str(HYPERCORN), "-w", "2", "--bind", f"fd://{fd}", "push2fa.asgi:app"],
        env=env,
        cwd=tmp_path,
        pass_fds=(fd,),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    sock.close()
    output = finished.stdout + finished.stderr
    assert "SingleProcessError" in output
    assert "Without PUSH2FA_REDIS_URL only one process" in output
