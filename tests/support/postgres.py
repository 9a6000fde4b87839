"""A real PostgreSQL for the tests: the machine's server, else an embedded one.

With PostgreSQL at 127.0.0.1:5432 (trust auth, as on the development machines
and CI) that server is used; anywhere else pgserver starts one in a temporary
directory, so a fresh clone passes with no setup. Every test that asks gets a
database of its own, so tests never see each other's rows.

A test that stops and starts the server itself gets a `PrivateCluster`: a
server of its own made with `initdb` and run with `pg_ctl` on its own port,
from the machine's PostgreSQL binaries or else pgserver's.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
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


def stop_embedded(pgdata: Path, within: float = 0.0) -> None:
    """Stop an embedded server a test's service left running in `pgdata`, after giving the
    service `within` seconds to stop it itself (it does, as it exits)."""
    deadline = time.monotonic() + within
    while (pgdata / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if (pgdata / "postmaster.pid").exists():
        import pgserver

        pgserver.get_server(pgdata, cleanup_mode="stop").cleanup()


def postgres_binaries() -> Path | None:
    """A directory holding `initdb` and `pg_ctl`: the machine's newest PostgreSQL's, else the
    ones pgserver ships; None when there is neither."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        found.append(Path(on_path).parent)
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        found.append(Path(spec.origin).parent / "pginstall" / "bin")
    return next((d for d in found if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


def _unprivileged_user() -> str | None:
    """Who runs the server when the tests run as root (PostgreSQL refuses root); else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise LookupError("running as root, and no user (postgres, pgserver, nobody) to run PostgreSQL")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivateCluster:
    """A PostgreSQL server of one test's own, on its own port, to stop and start at will."""

    binaries: Path
    root: Path
    port: int
    user: str | None

    @classmethod
    def create(cls, binaries: Path) -> PrivateCluster:
        """Make the cluster (trust auth, no fsync: a test's data need not survive a power cut)."""
        user = _unprivileged_user()
        root = Path(tempfile.mkdtemp(prefix="ogdc-private-pg-"))
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        cluster = cls(binaries, root, _free_port(), user)
        cluster._run(
            "initdb", "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "--no-sync"
        )
        return cluster

    @property
    def server(self) -> PostgresServer:
        return PostgresServer("127.0.0.1", self.port)

    def _run(self, program: str, *arguments: str) -> None:
        log = self.root / "commands.log"
        with log.open("ab") as output:
            done = subprocess.run(
                [str(self.binaries / program), *arguments],
                user=self.user,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed:\n{log.read_text(errors='replace')}")

    def _pg_ctl(self, *arguments: str) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-w", "-t", "60", *arguments)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", str(self.root / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        """Stop as an operator's restart does: every session is ended, nothing is lost."""
        self._pg_ctl("-m", "fast", "stop")

    def remove(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
