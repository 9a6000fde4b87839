"""The service as operators see it: start, stop, readiness, settings errors, root path."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import requests

from ogdc_hooks.db.migrate import head_revision
from tests.api.conftest import ADMIN_PASSWORD, Api
from tests.support.postgres import PostgresServer
from tests.support.service import DEFAULT_SECRETS, Service, service_env


def _run_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ogdc_hooks", "serve", "--host", "127.0.0.1", "--port", "0"],
        env=service_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _execute(postgres: PostgresServer, database: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(
            host=postgres.host, port=postgres.port, user=postgres.user, database=database
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def test_sigterm_stops_the_service_gracefully(api_env: dict[str, str]) -> None:
    with Service(api_env) as service:
        assert requests.get(f"{service.url}/healthz", timeout=10).json() == {"status": "ok"}
        assert service.stop() == 0
        log = service.log_text()
    assert "stopping" in log
    assert "stopped" in log
    assert "Traceback" not in log


def test_a_missing_secret_stops_the_start_with_one_line_naming_it(
    db_env: dict[str, str],
) -> None:
    result = _run_serve({**db_env, "OGDC_ADMIN_PASSWORD": "whatever-it-is"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ogdc-hooks: error: OGDC_JWT_SECRET_KEY: required when OGDC_DB_HOST is set"
    ]


def test_a_malformed_setting_stops_the_start_with_one_line_naming_it(
    api_env: dict[str, str],
) -> None:
    for name, value in (("OGDC_DB_PORT", "fifty"), ("OGDC_LOG_FORMAT", "xml")):
        result = _run_serve({**api_env, name: value})
        assert result.returncode == 2, name
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"ogdc-hooks: error: {name}: "), lines


def test_an_unreachable_database_is_one_line_without_secrets(api_env: dict[str, str]) -> None:
    result = _run_serve({**api_env, "OGDC_DB_HOST": "127.0.0.1", "OGDC_DB_PORT": "9"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ogdc-hooks: error: cannot use PostgreSQL at 127.0.0.1:9/")
    for secret in (*DEFAULT_SECRETS.values(), api_env["OGDC_DB_PASSWORD"]):
        assert secret not in result.stderr + result.stdout


def test_two_services_starting_together_migrate_once_and_both_get_ready(
    api_env: dict[str, str],
) -> None:
    first, second = Service(api_env), Service(api_env)
    try:
        first.launch()
        second.launch()
        first.wait_ready()
        second.wait_ready()
        logs = [first.log_text(), second.log_text()]
        assert sum("ogdc_hooks.api.app migrated from_revision=null" in log for log in logs) == 1
        for service in (first, second):
            token = Api(service).admin_token()
            assert Api(service).call("GET", "/user", token).status_code == 200
    finally:
        for service in (first, second):
            service.__exit__(None, None, None)


def test_the_admin_password_follows_the_variable(api_env: dict[str, str]) -> None:
    with Service(api_env) as service:
        Api(service).admin_token()
    changed = {**api_env, "OGDC_ADMIN_PASSWORD": "a brand new admin password"}
    with Service(changed) as service:
        api = Api(service)
        assert api.token("admin", ADMIN_PASSWORD).status_code == 401
        token = api.login("admin", "a brand new admin password")
        assert api.call("GET", "/user", token).json() == {"current_user": "admin"}
        assert "admin_updated" in service.log_text()
    with Service(changed) as service:  # unchanged variable: nothing to update
        assert "admin_updated" not in service.log_text()
        assert "admin_created" not in service.log_text()


def test_readyz_is_503_until_the_schema_is_at_head(
    api_env: dict[str, str], postgres: PostgresServer, database: str
) -> None:
    with Service(api_env) as service:
        assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200
        _execute(postgres, database, "UPDATE alembic_version SET version_num = 'older'")
        response = requests.get(f"{service.url}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json() == {
            "detail": f"The database schema is at older, not {head_revision()}."
        }
        assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200


def test_readyz_is_503_when_the_database_is_gone(
    postgres: PostgresServer, api_env: dict[str, str]
) -> None:
    doomed = postgres.create_database()
    with Service({**api_env, "OGDC_DB_NAME": doomed}) as service:
        api = Api(service)
        token = api.admin_token()
        postgres.drop_database(doomed)
        response = requests.get(f"{service.url}/readyz", timeout=30)
        assert response.status_code == 503
        assert response.json() == {"detail": "The database cannot be reached."}
        assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200
        for _ in range(3):  # whatever connection the pools hand out: 503 to retry, never 500
            answer = api.call("GET", "/user", token)
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "5"
            assert api.token("admin", ADMIN_PASSWORD).status_code == 503
        assert service.stop() == 0


def test_api_root_path_prefixes_every_route(api_env: dict[str, str]) -> None:
    with Service({**api_env, "API_ROOT_PATH": "/ogdc/api/"}) as service:
        assert service.url == f"{service.base_url}/ogdc/api"
        api = Api(service)
        token = api.admin_token()
        assert api.call("GET", "/user", token).json() == {"current_user": "admin"}
        assert requests.get(f"{service.base_url}/version", timeout=10).status_code == 404
        document = api.call("GET", "/openapi.json").json()
        assert "/ogdc/api/users/{name}" in document["paths"]
        flows = document["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
        assert flows["password"]["tokenUrl"] == "/ogdc/api/token"


def test_version_names_the_package(api_env: dict[str, str]) -> None:
    from ogdc_hooks import __version__

    with Service(api_env) as service:
        response = requests.get(f"{service.url}/version", timeout=10)
    assert response.json() == {"ogdc_hooks_version": __version__}


def test_migrate_and_version_commands(api_env: dict[str, str]) -> None:
    env = service_env(api_env)
    for _ in range(2):  # the second run finds nothing to do
        result = subprocess.run(
            [sys.executable, "-m", "ogdc_hooks", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"The database is at revision {head_revision()}."
    version = subprocess.run(
        [sys.executable, "-m", "ogdc_hooks", "version"],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert version.stdout.startswith("ogdc-hooks ")


def test_a_taken_port_is_one_line(api: Api) -> None:
    port = api.service.port
    result = subprocess.run(
        [sys.executable, "-m", "ogdc_hooks", "serve", "--host", "127.0.0.1", "--port", port],
        env=api.service.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    expected = f"ogdc-hooks: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert lines[-1] == expected
    assert "Traceback" not in result.stderr


def test_a_database_that_does_not_exist_says_how_to_create_it(api_env: dict[str, str]) -> None:
    result = _run_serve({**api_env, "OGDC_DB_NAME": "no_such_database_here"})
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "the database 'no_such_database_here' does not exist there: create it (createdb" in line
    assert "sqlalche.me" not in line and "Traceback" not in result.stderr


def test_a_short_jwt_key_stops_the_start_with_one_line(api_env: dict[str, str]) -> None:
    result = _run_serve({**api_env, "OGDC_JWT_SECRET_KEY": "short"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ogdc-hooks: error: OGDC_JWT_SECRET_KEY: must have at least 32 ")
    assert "token_urlsafe" in line and "short" not in line  # the value is never echoed
