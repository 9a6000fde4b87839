"""An embedded PostgreSQL in `OGDC_DATA_DIR` (pgserver), for a one-command start.

The service then talks to it exactly as to a real server, through asyncpg over
its Unix socket; only the address differs. The server stops when the last
process using it lets go of it (pgserver counts its users), so it stops with
`serve` unless, say, a `migrate` still holds it.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg


def _start(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # Without a session (containers, CI) pgserver falls back to /tmp and says so at import.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver  # imported here: only embedded mode needs its binaries

    pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
    return pgserver.get_server(pgdata, cleanup_mode="stop")


async def start_embedded(data_dir: Path, database: str) -> tuple[str, int, Callable[[], None]]:
    """Start (or join) the embedded server and make sure `database` exists.

    Returns the socket directory and port to connect to, and how to let go of the
    server (blocking: it may stop it).
    """
    server = await asyncio.to_thread(_start, data_dir / "pgdata")
    parts = urlsplit(server.get_uri())
    socket_dir = parse_qs(parts.query)["host"][0]
    port = parts.port or 5432
    connection = await asyncpg.connect(
        host=socket_dir, port=port, user="postgres", database="postgres"
    )
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    return socket_dir, port, server.cleanup
