"""Fixtures shared by every test: a real PostgreSQL and a database per test, or a private
server for a test that restarts it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.postgres import (
    PostgresServer,
    PrivateCluster,
    postgres_binaries,
    start_postgres,
)

if TYPE_CHECKING:
    from tests.support.oidc_provider import Provider


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    if server.keeper is not None:
        server.keeper.cleanup()


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    """A real OpenID Connect provider for a module's single sign-on tests (Flask and
    authlib are imported only by the modules that use it)."""
    from tests.support.oidc_provider import running_provider

    with running_provider() as running:
        yield running


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
