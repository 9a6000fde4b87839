"""Running the real `ogdc-hooks` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer
from tests.support.service import DEFAULT_SECRETS, Service

ROOT = Path(__file__).resolve().parents[2]

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli() -> CliRunner:
    """`run_cli(*args, env={...})` runs `python -m ogdc_hooks *args` with only the given
    `OGDC_API_*` variables set (none inherited from the developer's shell), and no token
    cache unless `env` names one in TOKEN_CACHE_FILE."""

    def run(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OGDC_")}
        no_cache = {"TOKEN_CACHE_FILE": "/nonexistent/ogdc-hooks/tokens.json"}
        return subprocess.run(
            [sys.executable, "-m", "ogdc_hooks", *args],
            env={**clean, **no_cache, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a failed command; fails on a traceback or a second line."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ogdc-hooks: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def service(postgres: PostgresServer) -> Iterator[Service]:
    """One real service for a module, on a database of its own; tests use their own names."""
    name = postgres.create_database()
    try:
        with Service({**postgres.env(name), **DEFAULT_SECRETS}) as running:
            yield running
    finally:
        postgres.drop_database(name)


@pytest.fixture
def admin_env(service: Service) -> dict[str, str]:
    """The CLI's variables for the service's admin."""
    return {
        "OGDC_API_URL": service.url,
        "OGDC_API_USERNAME": "admin",
        "OGDC_API_PASSWORD": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"],
    }
