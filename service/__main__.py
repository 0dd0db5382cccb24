"""`python -m service [--config FILE]` serves the API; `python -m service migrate --config FILE` applies
the schema as the master user and creates (or re-passwords) the API's own user with the password its
secret holds now (`MigrationSettings`); `migrate --dsn DSN` applies the schema only."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service")
    p.add_argument("command", nargs="?", default="serve", choices=("serve", "migrate"))
    p.add_argument("--config", help="settings JSON (default: $MERIDIAN_SERVICE_CONFIG)")
    p.add_argument("--dsn", help="migrate: apply the schema only, on this DSN (instead of --config)")
    args = p.parse_args(argv)

    from service import logs
    from service.settings import MigrationSettings, ServiceSettings

    if args.command == "migrate":
        from service.store import ensure_app_user, migrate

        if args.dsn:
            asyncio.run(migrate(args.dsn))
            return 0
        if not args.config:
            raise SystemExit("service migrate: pass --config FILE (migration settings) or --dsn DSN")
        from service.dbsecret import SecretPassword, SecretUnavailable

        m = MigrationSettings.load(args.config)
        try:
            password = SecretPassword(m.app_secret).current()
        except SecretUnavailable as exc:
            raise SystemExit(f"service migrate: the application user's password: {exc}") from None
        asyncio.run(migrate(m.admin_dsn))
        asyncio.run(ensure_app_user(m.admin_dsn, m.app_user, password))
        return 0

    import uvicorn

    from service.app import create_app
    from service.objects import from_settings
    from service.store import PgStore

    settings = ServiceSettings.load(args.config)
    logs.setup({"service": "meridian", "region": settings.region, "role": settings.role})
    password = None
    if settings.db_secret is not None:
        from service.dbsecret import SecretPassword

        password = SecretPassword(settings.db_secret)
    store = PgStore(
        settings.write_dsn,
        settings.read_dsn,
        pool_max=settings.pool_max,
        timeout_s=settings.db_timeout_s,
        password=password,
        writes=settings.writes,
    )
    app = create_app(settings, store, objects=from_settings(settings))
    # the fast event loop and HTTP parser the image installs (the service extra); plain Python without them
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop,
        http=http,
        access_log=False,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=2,
        backlog=1024,
    )
    uvicorn.Server(config).run()
    logging.getLogger("service").info("service stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
