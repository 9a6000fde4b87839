"""Fixtures shared by every test: a real PostgreSQL and a database per test, or a private
server for a test that restarts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import (
    PostgresServer,
    PrivateCluster,
    postgres_binaries,
    start_postgres,
)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    if server.keeper is not None:
        server.keeper.cleanup()


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    """A new, empty database, dropped after the test."""
    name = postgres.create_database()
    yield name
    postgres.drop_database(name)


@pytest.fixture
def db_env(postgres: PostgresServer, database: str) -> dict[str, str]:
    """The service's database variables for this test's own database."""
    return postgres.env(database)


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL server of the test's own (`PrivateCluster`), running, removed after."""
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("no initdb: neither a PostgreSQL installation nor pgserver's binaries")
    cluster = PrivateCluster.create(binaries)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
