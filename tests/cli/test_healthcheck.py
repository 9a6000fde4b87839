"""`ogdc-hooks healthcheck`, the image's HEALTHCHECK: 0 while the service on this machine
answers /healthz under API_ROOT_PATH, else 1 with one line saying why."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.cli.conftest import CliRunner, one_line_error
from tests.support.service import DEFAULT_SECRETS, Service


def test_a_running_service_is_healthy(run_cli: CliRunner, service: Service) -> None:
    done = run_cli("healthcheck", "--port", service.port, env={"API_ROOT_PATH": "/"})
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"http://127.0.0.1:{service.port}/healthz: ok\n"


def test_the_check_follows_api_root_path(run_cli: CliRunner, db_env: dict[str, str]) -> None:
    with Service({**db_env, **DEFAULT_SECRETS, "API_ROOT_PATH": "/ogdc/api"}) as service:
        port = service.port
        done = run_cli("healthcheck", "--port", port, env={"API_ROOT_PATH": "/ogdc/api/"})
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"http://127.0.0.1:{port}/ogdc/api/healthz: ok\n"
        line = one_line_error(run_cli("healthcheck", "--port", port, env={"API_ROOT_PATH": "/"}))
        assert line == f"ogdc-hooks: error: http://127.0.0.1:{port}/healthz answered 404"


def test_nothing_listening_is_unhealthy(run_cli: CliRunner) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    line = one_line_error(run_cli("healthcheck", "--port", port, env={"API_ROOT_PATH": "/"}))
    assert line == (
        f"ogdc-hooks: error: cannot reach http://127.0.0.1:{port}/healthz: Connection refused"
    )


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung service)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield str(listener.getsockname()[1])


def test_a_service_that_does_not_answer_in_time_is_unhealthy(
    run_cli: CliRunner, silent_port: str
) -> None:
    args = ("healthcheck", "--port", silent_port, "--timeout", "0.5")
    line = one_line_error(run_cli(*args, env={"API_ROOT_PATH": "/"}))
    assert line == (
        f"ogdc-hooks: error: http://127.0.0.1:{silent_port}/healthz did not answer within 0.5 s"
    )


def test_a_bad_api_root_path_is_one_line(run_cli: CliRunner) -> None:
    line = one_line_error(run_cli("healthcheck", env={"API_ROOT_PATH": "ogdc"}))
    assert line == "ogdc-hooks: error: API_ROOT_PATH: must start with '/', got 'ogdc'"
