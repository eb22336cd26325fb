"""`python -m bench.emulator --fd N --callback-url URL`: push2fa's push service as its own
server, the way real Authy is a separate service. It shares the API key, app name and id
with the app through the AUTHY_* variables, keeps its data in the app's database
(PUSH2FA_DATABASE_URL), and is used only through its public HTTP interface (the Authy API
and the control API, which takes the key in a header).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config

from bench.procs import raise_fd_limit
from push2fa.cli import migrate
from push2fa.pushservice import EmulatorSettings, create_emulator_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator")
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    parser.add_argument("--callback-url", required=True)
    args = parser.parse_args(argv)
    raise_fd_limit()
    settings = EmulatorSettings(
        api_key=os.environ["AUTHY_PRODUCTION_API_KEY"],
        app_name=os.environ["AUTHY_APP_NAME"],
        app_id=os.environ["AUTHY_APP_ID"],
        callback_url=args.callback_url,
        database_url=os.environ["PUSH2FA_DATABASE_URL"],
        callback_method="POST",
    )
    asyncio.run(migrate(settings.database_url))
    config = Config()
    config.bind = [f"fd://{args.fd}"]
    config.backlog = 1024
    config.graceful_timeout = 3
    config.accesslog = None
    asyncio.run(serve(create_emulator_app(settings), config))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
