"""A real PostgreSQL for the tests: the machine's server, else an embedded one.

With PostgreSQL at 127.0.0.1:5432 (trust auth, as on the development machines
and CI) that server is used; anywhere else pgserver starts one in a temporary
directory, so a fresh clone passes with no setup. Every test that asks gets a
database of its own, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg


@dataclass(frozen=True)
class PostgresServer:
    """Where the test server listens; `host` is an address or a socket directory."""

    host: str
    port: int
    user: str = "postgres"
    keeper: Any = None  # the pgserver handle, kept alive for the session

    def env(self, database: str) -> dict[str, str]:
        """The service's variables for one database on this server."""
        return {
            "OGDC_DB_HOST": self.host,
            "OGDC_DB_PORT": str(self.port),
            "OGDC_DB_NAME": database,
            "OGDC_DB_USERNAME": self.user,
            "OGDC_DB_PASSWORD": "unused-with-trust-auth",
        }

    def dsn(self, database: str) -> str:
        return f"postgresql://{self.user}@/{database}?host={self.host}&port={self.port}"

    async def _admin(self, statement: str) -> None:
        connection = await asyncpg.connect(
            host=self.host, port=self.port, user=self.user, database="postgres"
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def create_database(self) -> str:
        name = f"ogdc_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(self._admin(f'CREATE DATABASE "{name}"'))
        return name

    def drop_database(self, name: str) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    async def terminate(self, database: str, *, like: str = "%", blocked: bool = False) -> int:
        """End the sessions on `database` whose statement is LIKE `like` (only those waiting
        for a lock if `blocked`), as a server restart or a failover would; how many."""
        connection = await asyncpg.connect(
            host=self.host, port=self.port, user=self.user, database="postgres"
        )
        try:
            ended = await connection.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid() AND query LIKE $2 "
                "AND (NOT $3 OR wait_event_type = 'Lock')",
                database,
                like,
                blocked,
            )
        finally:
            await connection.close()
        return int(ended)


def _local_server_up(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            pass
    except OSError:
        return False
    try:
        asyncio.run(PostgresServer(host, port)._admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError):
        return False
    return True


def start_postgres() -> PostgresServer:
    """The machine's PostgreSQL if it answers, else a fresh embedded server."""
    if _local_server_up():
        return PostgresServer("127.0.0.1", 5432)
    import pgserver

    keeper = pgserver.get_server(Path(tempfile.mkdtemp(prefix="ogdc-pg-")), cleanup_mode="stop")
    parts = urlsplit(keeper.get_uri())
    return PostgresServer(parse_qs(parts.query)["host"][0], parts.port or 5432, keeper=keeper)
