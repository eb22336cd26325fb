"""The `push2fa` command: database migrations, the server, and the push service on its own
(`push2fa emulator`, named for its past)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dotenv import find_dotenv, load_dotenv

from push2fa.config import PROJECT_ROOT, ConfigError, Settings, load_settings
from push2fa.logs import configure_logging

if TYPE_CHECKING:
    from hypercorn.config import Config

log = logging.getLogger("push2fa")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        sys.exit(f"push2fa: configuration error: {exc}")


# Any fixed number: the PostgreSQL advisory lock every push2fa migration run takes.
MIGRATION_LOCK_KEY = 0x70757368  # "push"


async def migrate(url: str, revision: str = "head") -> None:
    """Apply migrations once even when several hosts start at the same moment: on
    PostgreSQL the runs queue on an advisory lock, and the later ones find nothing to do."""
    from sqlalchemy import text

    from push2fa.db import make_engine
    from push2fa.migrate import upgrade_url

    if not url.startswith("postgresql"):
        await upgrade_url(url, revision)
        return
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                await upgrade_url(url, revision)
            finally:
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
    finally:
        await engine.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings()
    asyncio.run(migrate(settings.database_url, args.revision))
    print(f"database is at {args.revision}")
    return 0


def _hypercorn_config(bind: list[str] | None, workers: int | None) -> Config:
    from hypercorn.config import Config

    config = Config.from_toml(str(PROJECT_ROOT / "hypercorn.toml"))
    # One handler for everything: Hypercorn's lines in push2fa's format, printed once.
    config.errorlog = logging.getLogger("hypercorn.error")
    if bind:
        config.bind = bind
    if workers:
        config.workers = workers
    return config


def _refuse_public_development(settings: Settings, binds: list[str]) -> None:
    from push2fa.domain.exposure import check_development_binds

    try:
        check_development_binds(settings.env, binds)
    except ConfigError as exc:
        sys.exit(f"push2fa: configuration error: {exc}")


def cmd_serve(args: argparse.Namespace) -> int:
    from push2fa.server import run

    settings = _settings()
    configure_logging(settings.log_level)
    config = _hypercorn_config(args.bind, args.workers)
    _refuse_public_development(settings, list(config.bind))
    if settings.ngrok:
        from push2fa.tunnel import TunnelError, open_tunnel

        try:
            url = open_tunnel(config.bind[0])
        except TunnelError as exc:
            sys.exit(f"push2fa: {exc}")
        settings = _settings()  # now with the tunnel's public URL
        log.info("ngrok tunnel open: %s", url)
    if config.workers > 1 and not settings.redis_url:
        sys.exit(
            "push2fa: workers > 1 needs PUSH2FA_REDIS_URL: without Redis a webhook handled by "
            "one worker cannot reach a browser connected to another."
        )
    asyncio.run(migrate(settings.database_url))
    log.info("push2fa at %s (push service: %s)", settings.public_url, settings.push_service)
    log.info("Authy OneTouch callback URL: %s  (method POST or GET)", settings.webhook_url)
    if settings.emulator_in_process:
        log.info("built-in push service: phone page at %s/_emulator/phone", settings.public_url)
    if settings.redis_url:
        log.info("Socket.IO fan-out over Redis; transports: %s", settings.socket_transports)
    return run(config)


def cmd_emulator(args: argparse.Namespace) -> int:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config
    from hypercorn.middleware import ProxyFixMiddleware

    from push2fa.pushservice import create_emulator_app
    from push2fa.web.own_push_service import approver_settings, emulator_settings

    settings = _settings()
    configure_logging(settings.log_level)
    config = Config()
    config.bind = args.bind or [f"{args.host}:{args.port}"]
    config.accesslog = None  # request lines carry tokens in paths and query strings
    config.errorlog = logging.getLogger("hypercorn.error")
    _refuse_public_development(settings, list(config.bind))
    asyncio.run(migrate(settings.database_url))
    # The Approver comes with it, so users an app made with `users/new` can add a phone.
    approver = approver_settings(settings)
    app = create_emulator_app(
        emulator_settings(settings, callback_url=args.callback_url), approver=approver
    )
    if settings.trusted_proxies:
        app = ProxyFixMiddleware(app, mode="legacy", trusted_hops=settings.trusted_proxies)  # type: ignore[arg-type, assignment]
    log.info(
        "push service at %s under /_emulator (callbacks to %s; data in the app's database)",
        ", ".join(config.bind),
        args.callback_url or settings.webhook_url,
    )
    if approver is not None:
        log.info("the Approver (the phone app) at %s/_emulator/approver/", settings.public_url)
    asyncio.run(serve(app, config))  # type: ignore[arg-type]
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="push2fa", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations (alembic upgrade)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)

    serve = sub.add_parser("serve", help="migrate if needed, then serve with Hypercorn")
    serve.add_argument("--bind", action="append", help="host:port (repeatable)")
    serve.add_argument("--workers", type=int)
    serve.set_defaults(func=cmd_serve)

    emu = sub.add_parser("emulator", help="run the push service as its own server")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=5001)
    emu.add_argument("--bind", action="append", help="host:port or fd://N (repeatable)")
    emu.add_argument("--callback-url", help="OneTouch callback URL (default: the app's)")
    emu.set_defaults(func=cmd_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    load_dotenv(find_dotenv(usecwd=True), override=False)
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
