"""Deployed under a path (ogdc-runner's `/ogdc/api`), the CLI reaches the API through
OGDC_API_URL."""

from __future__ import annotations

from tests.cli.conftest import CliRunner, one_line_error
from tests.support.service import DEFAULT_SECRETS, Service


def test_commands_under_api_root_path(run_cli: CliRunner, db_env: dict[str, str]) -> None:
    with Service({**db_env, **DEFAULT_SECRETS, "API_ROOT_PATH": "/ogdc/api"}) as service:
        env = {
            "OGDC_API_URL": f"{service.url}/",  # a trailing slash is fine
            "OGDC_API_USERNAME": "admin",
            "OGDC_API_PASSWORD": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"],
        }
        created = run_cli("create-user", "mia", "mia-password", env=env)
        assert (created.returncode, created.stderr) == (0, "")
        listing = run_cli("users", "list", env=env)
        assert "mia" in listing.stdout.split()

        without_path = {**env, "OGDC_API_URL": service.base_url}
        line = one_line_error(run_cli("users", "list", env=without_path))
        assert "has no POST /token (HTTP 404)" in line and "API_ROOT_PATH" in line
