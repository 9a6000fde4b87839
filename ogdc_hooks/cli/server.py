"""`ogdc-hooks serve`, `migrate`, `version` and `healthcheck`.

Bad settings stop `serve` and `migrate` with one line naming the variable and
exit code 2. `serve` stops gracefully on SIGTERM or SIGINT: it stops taking
connections, lets requests in flight finish, closes the background contexts
and the database, and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import logging
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web
from yarl import URL

from ogdc_hooks import __version__
from ogdc_hooks.cli.client import connect_failure_reason
from ogdc_hooks.cli.errors import CommandError
from ogdc_hooks.cli.startup import print_summary, summary
from ogdc_hooks.logs import ServerLog, configure_logging, log_event
from ogdc_hooks.settings import (
    Settings,
    SettingsError,
    api_root_path,
    load_settings,
    secret_values,
    with_development_secrets,
)

log = logging.getLogger("ogdc_hooks.server")

SETTINGS_EXIT_CODE = 2
SHUTDOWN_TIMEOUT = 20.0  # seconds requests in flight get after SIGTERM


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    serve = subparsers.add_parser("serve", help="run the service (API, webhooks, workers)")
    serve.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 (a service in a container listens on every interface)
        help="address to listen on (default 0.0.0.0)",
    )
    serve.add_argument(
        "--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)"
    )
    serve.set_defaults(func=serve_command)
    migrate_parser = subparsers.add_parser("migrate", help="bring the database schema up to date")
    migrate_parser.set_defaults(func=migrate_command)
    version = subparsers.add_parser("version", help="print the version")
    version.set_defaults(func=version_command)
    health = subparsers.add_parser(
        "healthcheck",
        help="exit 0 when the service on this machine answers /healthz (the image's HEALTHCHECK)",
    )
    health.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    health.add_argument("--port", type=_port, default=8000, help="default 8000, as serve")
    health.add_argument("--timeout", type=_seconds, default=4.0, help="seconds (default 4)")
    health.set_defaults(func=healthcheck_command)


def _port(raw: str) -> int:
    if not raw.isdigit() or int(raw) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {raw!r}")
    return int(raw)


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (0-3600), got {raw!r}")
    return value


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as err:
        raise CommandError(str(err), SETTINGS_EXIT_CODE) from None
    configure_logging(settings.log_format, settings.log_level, secret_values(settings))
    return settings


def serve_command(args: argparse.Namespace) -> int:
    # The service itself is imported only to serve: client commands start faster without it.
    from ogdc_hooks.api.context import StartupError
    from ogdc_hooks.bootstrap import create_app

    settings = _settings()
    try:
        settings, generated_admin_password = with_development_secrets(settings)
    except (OSError, ValueError) as err:
        raise CommandError(
            f"cannot use the development secrets in {settings.data_dir}: {err}"
        ) from None
    configure_logging(settings.log_format, settings.log_level, secret_values(settings))
    if settings.embedded_db:
        _hold_data_dir(settings.data_dir)
    facts = summary(settings, generated_admin_password)
    try:
        app = create_app(settings)
    except SettingsError as err:
        raise CommandError(str(err), SETTINGS_EXIT_CODE) from None
    try:
        asyncio.run(
            _serve(app, args.host, args.port, lambda: print_summary(facts, settings.log_format))
        )
    except StartupError as err:
        raise CommandError(str(err)) from None
    return 0


def _hold_data_dir(data_dir: Path) -> None:
    """One `serve` per embedded database: a second one on the same directory would share
    its server and its jobs unseen. The lock lives as long as this process."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "serve.pid").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise CommandError(
            f"another `ogdc-hooks serve` (PID {holder}) uses the embedded database in "
            f"{data_dir}: stop it first, or give this one its own OGDC_DATA_DIR"
        ) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _HELD.append(handle)


_HELD: list[IO[str]] = []  # open lock files, kept for the life of the process


async def _serve(app: web.Application, host: str, port: int, started: Callable[[], None]) -> None:
    """Serve until SIGTERM or SIGINT; `started` once the database is up and the port open,
    so a failed start stays one line."""
    from ogdc_hooks.api.context import SETTINGS, StartupError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # A connection that has not sent a whole request within the read timeout (slowloris), or
    # sits idle that long between requests, is closed; bodies have the same limit.
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        logger=ServerLog(logging.getLogger("aiohttp.server")),
        keepalive_timeout=float(app[SETTINGS].http_read_timeout_seconds),
        lingering_time=0,
    )
    try:
        await runner.setup()  # runs the background contexts: database, migrations, admin
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as err:
            reason = os.strerror(err.errno) if err.errno else str(err)
            raise StartupError(f"cannot listen on {host}:{port}: {reason}") from None
        _freeze_startup_heap()
        started()
        for address in runner.addresses:
            log_event(log, "listening", url=f"http://{address[0]}:{address[1]}")
        await stop.wait()
        log_event(log, "stopping")
    finally:
        await runner.cleanup()
    log_event(log, "stopped")


def _freeze_startup_heap() -> None:
    """Keep what start-up made (modules, schemas, hera's models) out of every later garbage
    collection: a full collection over it held intake up for tens of milliseconds, the p99
    of `bench/intake_bench.py` at c=50 (66.7 ms, 18.6 ms frozen)."""
    gc.collect()
    gc.freeze()


def migrate_command(args: argparse.Namespace) -> int:
    settings = _settings()
    revision = asyncio.run(_migrate(settings))
    print(f"The database is at revision {revision}.")
    return 0


async def _migrate(settings: Settings) -> str | None:
    import asyncpg
    from sqlalchemy.exc import SQLAlchemyError

    from ogdc_hooks.db.engine import open_database
    from ogdc_hooks.db.migrate import current_revision, migrate

    try:
        database = await open_database(settings)
    except (OSError, subprocess.SubprocessError, asyncpg.PostgresError, SQLAlchemyError) as err:
        raise CommandError(f"cannot start the database: {err}") from None
    try:
        await migrate(database.engine)
        return await current_revision(database.engine)
    except (OSError, asyncpg.PostgresError, SQLAlchemyError) as err:
        raise CommandError(f"cannot migrate the database: {type(err).__name__}: {err}") from None
    finally:
        await database.close()


def version_command(args: argparse.Namespace) -> int:
    print(f"ogdc-hooks {__version__}")
    return 0


def healthcheck_command(args: argparse.Namespace) -> int:
    """Exit 1 with one line on any failure: Docker reads 1 as unhealthy (2 is reserved)."""
    try:
        root = api_root_path(os.environ)
    except SettingsError as err:
        raise CommandError(str(err)) from None
    url = URL.build(
        scheme="http", host=args.host, port=args.port, path=root.rstrip("/") + "/healthz"
    )
    status = asyncio.run(_status_of(url, args.timeout))
    if status != 200:
        raise CommandError(f"{url} answered {status}")
    print(f"{url}: ok")
    return 0


async def _status_of(url: URL, seconds: float) -> int:
    try:
        async with (
            asyncio.timeout(seconds),
            aiohttp.ClientSession() as session,
            session.get(url, allow_redirects=False) as response,
        ):
            return response.status
    except aiohttp.ClientConnectorError as err:
        raise CommandError(f"cannot reach {url}: {connect_failure_reason(err)}") from None
    except TimeoutError:
        raise CommandError(f"{url} did not answer within {seconds:g} s") from None
    except aiohttp.ClientError as err:
        raise CommandError(f"{url} failed: {type(err).__name__}: {err}") from None
