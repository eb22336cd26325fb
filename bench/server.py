"""`python -m bench.server --fd N [--workers W]`: the benchmark app under Hypercorn, in a
process of its own.

Hypercorn is configured from the project's hypercorn.toml (keep-alive, graceful timeout),
then pointed at the socket the harness passed down. `--workers 0` serves in this very
process, so the harness can read its memory and CPU by this pid; `--workers 2` is
Hypercorn's multi-process mode (it needs PUSH2FA_REDIS_URL for the Socket.IO fan-out).
"""

from __future__ import annotations

import argparse
import sys

from hypercorn.config import Config
from hypercorn.run import run

from bench.procs import raise_fd_limit
from push2fa.config import PROJECT_ROOT

BACKLOG = 2048  # thousands of browsers connect within seconds of each other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--app", default="bench.asgi:app", help="bench.bare_asgi:app: reference")
    args = parser.parse_args(argv)
    raise_fd_limit()
    config = Config.from_toml(str(PROJECT_ROOT / "hypercorn.toml"))
    config.bind = [f"fd://{args.fd}"]
    config.workers = args.workers
    config.backlog = BACKLOG
    config.graceful_timeout = 3
    config.accesslog = None
    config.application_path = args.app
    return int(run(config) or 0)


if __name__ == "__main__":
    sys.exit(main())
