"""`ogdc-hooks set-token` and the token cache, with a real provider and the real service.

As `ogdc-runner set-token` (0.4.2): the JSON of `/authorize` (or each token) is
kept in TOKEN_CACHE_FILE, readable by the user alone; later commands send the
access token, and trade the refresh token at `POST /refresh` once it expires.
"""

from __future__ import annotations

import base64
import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import CliRunner, one_line_error
from tests.support.oidc_provider import (
    Provider,
    client_secrets,
    sign_in_at,
)
from tests.support.postgres import PostgresServer
from tests.support.service import DEFAULT_SECRETS, Service


@pytest.fixture(scope="module")
def sso_service(
    postgres: PostgresServer, provider: Provider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    name = postgres.create_database()
    path = client_secrets(tmp_path_factory.mktemp("oidc"), provider.url)
    try:
        env = {**postgres.env(name), **DEFAULT_SECRETS, "OIDC_CLIENT_SECRETS_FILE": str(path)}
        with Service(env) as running:
            yield running
    finally:
        postgres.drop_database(name)


def _authorize_answer(service: Service, provider: Provider) -> str:
    sub, _ = provider.new_user(admin=True)
    response = sign_in_at(service.url, provider, sub)
    assert response.status_code == 200, response.text
    return response.text


def _expired_jwt() -> str:
    """An access token whose `exp` has passed (the CLI reads it unverified, to refresh)."""

    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part({'exp': int(time.time()) - 60})}.c2ln"


def test_set_token_keeps_the_tokens_for_later_commands(
    run_cli: CliRunner, sso_service: Service, provider: Provider, tmp_path: Path
) -> None:
    cache = tmp_path / "ogdc" / "tokens.json"
    env = {"OGDC_API_URL": sso_service.url, "TOKEN_CACHE_FILE": str(cache)}
    answer = _authorize_answer(sso_service, provider)
    done = run_cli("set-token", "--json-str", answer, env=env)
    assert done.returncode == 0, done.stderr
    assert "OGDC tokens updated successfully" in done.stdout
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert json.loads(cache.read_text()) == json.loads(answer)["token"]
    listing = run_cli("users", "list", env=env)
    assert listing.returncode == 0, listing.stderr
    assert json.loads(answer)["user"] in listing.stdout


def test_an_expired_access_token_is_refreshed(
    run_cli: CliRunner, sso_service: Service, provider: Provider, tmp_path: Path
) -> None:
    cache = tmp_path / "tokens.json"
    env = {"OGDC_API_URL": sso_service.url, "TOKEN_CACHE_FILE": str(cache)}
    refresh = json.loads(_authorize_answer(sso_service, provider))["token"]["refresh_token"]
    stale = _expired_jwt()
    done = run_cli("set-token", "--access", stale, "--refresh", refresh, env=env)
    assert done.returncode == 0, done.stderr
    listing = run_cli("users", "list", env=env)
    assert listing.returncode == 0, listing.stderr
    kept = json.loads(cache.read_text())
    assert kept["access_token"] != stale and kept["refresh_token"] == refresh
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_an_expired_token_without_a_refresh_token_says_to_sign_in(
    run_cli: CliRunner, sso_service: Service, tmp_path: Path
) -> None:
    env = {"OGDC_API_URL": sso_service.url, "TOKEN_CACHE_FILE": str(tmp_path / "t.json")}
    assert run_cli("set-token", "--access", _expired_jwt(), env=env).returncode == 0
    line = one_line_error(run_cli("users", "list", env=env))
    assert "the cached single sign-on token has expired; sign in again at" in line
    assert f"{sso_service.url}/login and run ogdc-hooks set-token" in line


def test_a_refused_refresh_token_is_one_line(
    run_cli: CliRunner, sso_service: Service, tmp_path: Path
) -> None:
    env = {"OGDC_API_URL": sso_service.url, "TOKEN_CACHE_FILE": str(tmp_path / "t.json")}
    done = run_cli("set-token", "--access", _expired_jwt(), "--refresh", "gone", env=env)
    assert done.returncode == 0
    line = one_line_error(run_cli("users", "list", env=env))
    assert "refreshing the single sign-on token failed" in line
    assert "HTTP 401: The refresh token is invalid or expired" in line


def test_set_token_needs_a_token(run_cli: CliRunner, tmp_path: Path) -> None:
    cache = tmp_path / "t.json"
    line = one_line_error(run_cli("set-token", env={"TOKEN_CACHE_FILE": str(cache)}))
    assert "give at least one of --access, --refresh or --json-str" in line
    assert not cache.exists()
    line = one_line_error(
        run_cli("set-token", "--json-str", "{not json", env={"TOKEN_CACHE_FILE": str(cache)})
    )
    assert "--json-str is not JSON" in line
