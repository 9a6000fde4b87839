"""Connecting to PostgreSQL: one async engine and session factory per process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ogdc_hooks.db.embedded import start_embedded
from ogdc_hooks.settings import Settings


@dataclass(frozen=True)
class Database:
    """The engine and the session factory every request and worker shares; `release` lets go
    of the embedded server, if this process started or joined one."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    release: Callable[[], None] | None = None

    async def close(self) -> None:
        await self.engine.dispose()
        if self.release is not None:
            await asyncio.to_thread(self.release)  # pg_ctl stop waits for the server


async def database_url(settings: Settings) -> tuple[URL, Callable[[], None] | None]:
    """The asyncpg URL of the configured server, starting the embedded one if needed (then
    also how to let go of it)."""
    if settings.embedded_db:
        socket_dir, port, release = await start_embedded(settings.data_dir, settings.db_name)
        url = URL.create(
            "postgresql+asyncpg",
            username="postgres",
            database=settings.db_name,
            query={"host": socket_dir, "port": str(port)},
        )
        return url, release
    return URL.create(
        "postgresql+asyncpg",
        username=settings.db_username,
        password=settings.db_password.reveal() if settings.db_password else None,
        host=settings.db_host,
        port=settings.db_port,
        database=settings.db_name,
    ), None


async def open_database(settings: Settings, *, pool_size: int = 10) -> Database:
    """Create the engine; connections are opened lazily and checked before use."""
    url, release = await database_url(settings)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"timeout": 10, "command_timeout": 30},
    )
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False), release)


async def _end_transaction(connection: asyncpg.Connection) -> None:
    """The pool's reset: only close a transaction left open.

    Everything sent through the driver pool is a single autocommitted statement
    that leaves no session state behind (no SET, LISTEN, cursor or lock), so
    asyncpg's default reset (`RESET ALL; UNLISTEN *; ...`, one more round trip
    per request) has nothing to undo.
    """
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def open_driver_pool(engine: AsyncEngine, *, max_size: int = 8) -> asyncpg.Pool:
    """A plain asyncpg pool on the engine's database, for the hottest queries.

    A lookup through it costs a fraction of one through SQLAlchemy (no session,
    no pre-ping round trip); use it only for short reads on every request.
    """
    url = engine.url
    return await asyncpg.create_pool(
        host=url.host or url.query.get("host"),
        port=url.port or int(str(url.query.get("port", 5432))),
        user=url.username,
        password=url.password,
        database=url.database,
        min_size=1,
        max_size=max_size,
        timeout=10,
        command_timeout=30,
        reset=_end_transaction,
    )
