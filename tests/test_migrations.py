"""Migrations: from empty to head, idempotent, race-free, and in step with `db/tables.py`;
and 0006 (forge logins) on a database the previous schema filled, up and down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ogdc_hooks.db.engine import Database, open_database
from ogdc_hooks.db.migrate import alembic_config, current_revision, head_revision, migrate
from ogdc_hooks.db.tables import Base
from ogdc_hooks.forges.github.webhooks import GitHubIntake
from ogdc_hooks.settings import load_settings


async def _open(db_env: dict[str, str]) -> Database:
    return await open_database(load_settings({**db_env, **_SECRETS}), pool_size=2)


_SECRETS = {"OGDC_JWT_SECRET_KEY": "k" * 40, "OGDC_ADMIN_PASSWORD": "unused-here"}


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_from_empty_to_head_then_nothing_to_do(db_env: dict[str, str]) -> None:
    database = await _open(db_env)
    try:
        assert await current_revision(database.engine) is None
        assert await migrate(database.engine) is None  # found an empty database
        assert await current_revision(database.engine) == head_revision()
        assert await migrate(database.engine) == head_revision()  # re-applied: a no-op
        assert await current_revision(database.engine) == head_revision()
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(_tables)
        assert set(Base.metadata.tables) | {"alembic_version"} == tables
    finally:
        await database.close()


async def test_the_migrated_schema_matches_the_tables_module(db_env: dict[str, str]) -> None:
    database = await _open(db_env)
    try:
        await migrate(database.engine)
        async with database.engine.connect() as connection:
            differences = await connection.run_sync(_differences)
        assert differences == []
    finally:
        await database.close()


async def test_two_processes_migrating_at_once_migrate_once(db_env: dict[str, str]) -> None:
    first, second = await _open(db_env), await _open(db_env)
    try:
        found = await asyncio.gather(migrate(first.engine), migrate(second.engine))
        assert sorted(found, key=str) == sorted([None, head_revision()], key=str)
        assert await current_revision(first.engine) == head_revision()
    finally:
        await first.close()
        await second.close()


def _step(revision: str, *, down: bool = False) -> Callable[[Connection], None]:
    """Upgrade (or downgrade) to exactly `revision`, as `ogdc-hooks migrate` would."""

    def run(connection: Connection) -> None:
        (command.downgrade if down else command.upgrade)(alembic_config(connection), revision)
        connection.commit()

    return run


async def _rows(database: Database, query: str, **values: object) -> set[tuple[object, ...]]:
    async with database.engine.connect() as connection:
        return {tuple(row) for row in await connection.execute(text(query), values)}


async def _execute(database: Database, query: str, **values: object) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(text(query), values)


_ADD_USER = "INSERT INTO users (name, password_hash, github_login) VALUES (:name, 'x', :login)"
_ADD_LOGIN = "INSERT INTO forge_logins (user_id, host, login) VALUES (:user, :host, :login)"


async def test_0006_moves_github_logins_to_forge_logins_and_back(
    db_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.com/api/v3")
    database = await _open(db_env)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0005"))
        for name, login in (("ann", "Ann-GH"), ("bob", None), ("cy", "cy")):
            await _execute(database, _ADD_USER, name=name, login=login)
        ids = dict(await _rows(database, "SELECT name, id FROM users"))
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0006"))

        moved = await _rows(database, "SELECT user_id, host, login FROM forge_logins")
        assert moved == {
            (ids["ann"], "ghe.example.com", "Ann-GH"),
            (ids["cy"], "ghe.example.com", "cy"),
        }
        async with database.engine.connect() as connection:
            columns = await connection.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("users")}
            )
        assert "github_login" not in columns

        # Unique ignoring case on one host; the same login in another case on another is fine.
        with pytest.raises(IntegrityError, match="forge_logins_host_login_lower_key"):
            await _execute(
                database, _ADD_LOGIN, user=ids["bob"], host="ghe.example.com", login="ANN-gh"
            )
        await _execute(database, _ADD_LOGIN, user=ids["bob"], host="codeberg.org", login="ANN-gh")
        with pytest.raises(IntegrityError, match="forge_logins_pkey"):  # one login a host
            await _execute(database, _ADD_LOGIN, user=ids["ann"], host="ghe.example.com", login="x")

        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0005", down=True))
        restored = await _rows(database, "SELECT name, github_login FROM users")
        assert restored == {("ann", "Ann-GH"), ("bob", None), ("cy", "cy")}
        with pytest.raises(IntegrityError, match="users_github_login_lower_key"):
            await _execute(database, _ADD_USER, name="dee", login="ANN-gh")
    finally:
        await database.close()


_FILL_0005 = [
    "INSERT INTO deliveries (id, event, payload) VALUES ('d-1', 'push', '{\"after\": \"a\"}')",
    "INSERT INTO runs (id, repository, clone_url, commit_sha, recipe, trigger, state, "
    "delivery_id) VALUES ('00000000-0000-0000-0000-000000000001', 'octo/recipes', "
    "'https://ghe.example.org/octo/recipes.git', 'a', 'recipes/x', 'push', 'queued', 'd-1')",
    "INSERT INTO branch_heads (repository, clone_url, default_branch) "
    "VALUES ('octo/recipes', 'https://ghe.example.org/octo/recipes.git', 'main')",
    "INSERT INTO jobs (kind, payload, dedupe_key) "
    "VALUES ('push', '{\"delivery\": \"d-1\"}', 'delivery:d-1')",
]


async def test_0007_gives_existing_rows_the_configured_githubs_host(
    db_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database filled by 0005 keeps every row; each names the GitHub it came from, and
    deliveries are then told apart per forge."""
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.org/api/v3")
    database = await _open(db_env)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0005"))
            for statement in _FILL_0005:
                await connection.execute(text(statement))
            await connection.commit()
            await connection.run_sync(_step("0007"))
            for table in ("deliveries", "runs", "branch_heads"):
                hosts = (await connection.execute(text(f"SELECT forge FROM {table}"))).scalars()
                assert list(hosts) == ["ghe.example.org"], table
            job = (await connection.execute(text("SELECT payload, dedupe_key FROM jobs"))).one()
            assert tuple(job) == (
                {"delivery": "d-1", "forge": "ghe.example.org"},
                "delivery:ghe.example.org:d-1",
            )
            # The same delivery id from another forge is another delivery.
            await connection.execute(
                text(
                    "INSERT INTO deliveries (forge, id, event, payload) "
                    "VALUES ('codeberg.org', 'd-1', 'push', '{}')"
                )
            )
            await connection.commit()
            with pytest.raises(IntegrityError):
                await connection.execute(
                    text(
                        "INSERT INTO deliveries (forge, id, event, payload) "
                        "VALUES ('ghe.example.org', 'd-1', 'push', '{}')"
                    )
                )
            await connection.rollback()
            await connection.execute(text("DELETE FROM deliveries WHERE forge = 'codeberg.org'"))
            await connection.commit()
            await connection.run_sync(_step("0005", down=True))
            job = (await connection.execute(text("SELECT payload, dedupe_key FROM jobs"))).one()
            assert tuple(job) == ({"delivery": "d-1"}, "delivery:d-1")
            assert (await connection.execute(text("SELECT count(*) FROM runs"))).scalar() == 1
    finally:
        await database.close()


@pytest.mark.parametrize(
    ("api_url", "host"),
    [
        (None, "github.com"),
        ("https://api.github.com", "github.com"),
        ("https://GHE.example.com/api/v3", "ghe.example.com"),
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
    ],
)
async def test_0006_files_logins_under_the_configured_githubs_host(
    db_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, api_url: str | None, host: str
) -> None:
    if api_url is None:
        monkeypatch.delenv("GITHUB_API_URL", raising=False)
    else:
        monkeypatch.setenv("GITHUB_API_URL", api_url)
    database = await _open(db_env)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0005"))
        await _execute(database, _ADD_USER, name="ann", login="ann")
        await migrate(database.engine)
        assert await _rows(database, "SELECT host, login FROM forge_logins") == {(host, "ann")}
        env = {"GITHUB_API_URL": api_url} if api_url else {}
        assert GitHubIntake(load_settings({**env, **_SECRETS})).host == host  # as runs are
    finally:
        await database.close()


async def test_0012_adds_the_forge_write_ledger_and_takes_it_away(db_env: dict[str, str]) -> None:
    database = await _open(db_env)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0012"))
            await connection.execute(text("INSERT INTO forge_writes (bucket) VALUES ('token')"))
            await connection.commit()
            assert "forge_writes" in await connection.run_sync(_tables)
            await connection.run_sync(_step("0007", down=True))
            assert "forge_writes" not in await connection.run_sync(_tables)
    finally:
        await database.close()


async def test_0009_adds_failure_details_and_output_url_and_takes_them_back(
    db_env: dict[str, str],
) -> None:
    """Runs made before 0009 keep everything and have no failure yet; 0007 drops both."""
    database = await _open(db_env)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0007"))
            await connection.execute(
                text(
                    "INSERT INTO runs (id, forge, repository, clone_url, commit_sha, recipe, "
                    "trigger, state) VALUES (gen_random_uuid(), 'github.com', 'o/r', 'u', "
                    "'abc', 'recipes/x', 'push', 'failed')"
                )
            )
            await connection.commit()
            await connection.run_sync(_step("0009"))
            row = (await connection.execute(text("SELECT failure, output_url FROM runs"))).one()
            assert tuple(row) == (None, None)
            await connection.execute(
                text('UPDATE runs SET failure = \'{"classification": "exit code 2"}\'')
            )
            await connection.commit()
            await connection.run_sync(_step("0007", down=True))
            columns = {c["name"] for c in await connection.run_sync(_run_columns)}
            assert not columns & {"failure", "output_url"}
            assert (await connection.execute(text("SELECT count(*) FROM runs"))).scalar() == 1
    finally:
        await database.close()


def _run_columns(connection: Connection) -> list[Any]:
    return list(inspect(connection).get_columns("runs"))


_FILL_0007 = [
    "INSERT INTO deliveries (forge, id, event, repository, payload) "
    "VALUES ('github.com', 'd-1', 'push', 'octo/recipes', '{}')",
    "INSERT INTO runs (id, forge, repository, clone_url, commit_sha, recipe, trigger, state) "
    "VALUES ('00000000-0000-0000-0000-000000000001', 'codeberg.org', 'octo/other', "
    "'https://codeberg.org/octo/other.git', 'a', 'recipes/x', 'push', 'queued')",
    "INSERT INTO jobs (kind, payload, dedupe_key) VALUES "
    '(\'push\', \'{"delivery": "d-1", "forge": "github.com"}\', \'delivery:github.com:d-1\'),'
    "('prepare', '{\"run\": \"00000000-0000-0000-0000-000000000001\"}', 'prepare:1'),"
    '(\'installation\', \'{"delivery": "d-2", "forge": "github.com"}\', \'delivery:x:d-2\')',
    "INSERT INTO jobs (kind, payload, dedupe_key, state) VALUES "
    "('report', '{\"run\": \"00000000-0000-0000-0000-000000000001\"}', 'report:1', 'done')",
]


async def test_0013_gives_waiting_jobs_their_repository_and_back(db_env: dict[str, str]) -> None:
    """Jobs still to run are held to the per-repository limit at once; finished ones and
    those of no repository are left without one."""
    database = await _open(db_env)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0007"))
            for statement in _FILL_0007:
                await connection.execute(text(statement))
            await connection.commit()
            await connection.run_sync(_step("0013"))
            rows = await connection.execute(text("SELECT dedupe_key, repository FROM jobs"))
            assert dict(tuple(row) for row in rows) == {
                "delivery:github.com:d-1": "github.com/octo/recipes",
                "prepare:1": "codeberg.org/octo/other",
                "delivery:x:d-2": None,
                "report:1": None,
            }
            await connection.run_sync(_step("0007", down=True))
            columns = {c["name"] for c in await connection.run_sync(_job_columns)}
            assert "repository" not in columns
            assert (await connection.execute(text("SELECT count(*) FROM jobs"))).scalar() == 4
    finally:
        await database.close()


def _job_columns(connection: Connection) -> list[dict[str, object]]:
    return list(inspect(connection).get_columns("jobs"))


async def test_0008_adds_pull_requests_and_keeps_runs_both_ways(db_env: dict[str, str]) -> None:
    """Runs made before 0008 keep everything and have no base; a downgrade drops only what
    0008 added."""
    database = await _open(db_env)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0005"))
            for statement in _FILL_0005:
                await connection.execute(text(statement))
            await connection.commit()
            await connection.run_sync(_step("0008"))
            columns = "recipe, base_sha, base_workflow, pull_request, recipe_facts"
            row = (await connection.execute(text(f"SELECT {columns} FROM runs"))).one()
            assert tuple(row) == ("recipes/x", None, None, None, None)
            await connection.execute(
                text(
                    "INSERT INTO pull_requests (forge, repository, number, head_sha, base_ref, "
                    "clone_url, fetch_ref, open, head_at) VALUES ('github.com', 'o/r', 7, 'a', "
                    "'refs/heads/main', 'https://github.com/o/r.git', 'refs/pull/7/head', true, "
                    "now())"
                )
            )
            await connection.commit()
            await connection.run_sync(_step("0007", down=True))
            assert "pull_requests" not in await connection.run_sync(_tables)
            assert (await connection.execute(text("SELECT count(*) FROM runs"))).scalar() == 1
    finally:
        await database.close()


async def test_0014_calls_every_stored_delivery_accepted_but_the_sweeps_and_back(
    db_env: dict[str, str],
) -> None:
    database = await _open(db_env)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0013"))
        for delivery_id in ("guid-1", "sweep-1"):
            await _execute(
                database,
                "INSERT INTO deliveries (forge, id, event, payload) "
                "VALUES ('github.com', :id, 'push', '{}')",
                id=delivery_id,
            )
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0014"))
        answers = "SELECT id, answer, repeats, repeated_at FROM deliveries"
        assert await _rows(database, answers) == {
            ("guid-1", "accepted", 0, None),
            ("sweep-1", "swept", 0, None),
        }
        async with database.engine.connect() as connection:
            await connection.run_sync(_step("0013", down=True))
        assert await _rows(database, "SELECT id FROM deliveries") == {("guid-1",), ("sweep-1",)}
    finally:
        await database.close()
