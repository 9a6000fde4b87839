"""Every way the API can fail the CLI ends in one clear line, exit 1, and no secret shown.

These run the real command against servers that misbehave the way a wrong
URL, a proxy or a hung service would; the real service is in test_users.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from aiohttp import web

from tests.cli.conftest import CliRunner, one_line_error
from tests.support.server_thread import ServerThread

PASSWORD = "s3cret-admin-pw"  # a test value that must never be printed


def credentials(url: str, **extra: str) -> dict[str, str]:
    return {
        "OGDC_API_URL": url,
        "OGDC_API_USERNAME": "admin",
        "OGDC_API_PASSWORD": PASSWORD,
        **extra,
    }


def assert_no_secret(done: object) -> None:
    assert PASSWORD not in f"{done}"


async def _html(_: web.Request) -> web.Response:
    return web.Response(text="<html>Welcome to nginx</html>", content_type="text/html")


async def _bad_gateway(_: web.Request) -> web.Response:
    return web.Response(status=502, text="<html>502 Bad Gateway</html>", content_type="text/html")


async def _redirect(_: web.Request) -> web.Response:
    raise web.HTTPTemporaryRedirect("https://api.example.org/ogdc/api/token")


async def _echoing(request: web.Request) -> web.Response:
    form = await request.post()
    return web.json_response({"detail": f"password {form['password']} is weird"}, status=400)


@pytest.fixture
def misbehaving() -> Iterator[str]:
    """A server whose routes answer the way a wrong URL or a proxy might."""
    app = web.Application()
    app.router.add_post("/html/token", _html)
    app.router.add_post("/gateway/token", _bad_gateway)
    app.router.add_post("/moved/token", _redirect)
    app.router.add_post("/echo/token", _echoing)
    server = ServerThread(app)
    yield server.start()
    server.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (in the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unreachable_server_is_named(run_cli: CliRunner) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    done = run_cli("users", "list", env=credentials(url))
    line = one_line_error(done)
    assert f"cannot reach the API at {url}: Connection refused" in line
    assert_no_secret(done)


def test_credentials_in_the_url_are_not_shown(run_cli: CliRunner) -> None:
    port = closed_port()
    done = run_cli("users", "list", env=credentials(f"http://admin:{PASSWORD}@127.0.0.1:{port}"))
    assert f"cannot reach the API at http://127.0.0.1:{port}:" in one_line_error(done)
    assert_no_secret(done)


def test_timeout(run_cli: CliRunner, silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    done = run_cli("users", "list", env=credentials(url, OGDC_API_TIMEOUT="0.5"))
    line = one_line_error(done)
    assert f"the API at {url} did not answer POST /token within 0.5 s" in line
    assert_no_secret(done)


def test_answer_that_is_not_json(run_cli: CliRunner, misbehaving: str) -> None:
    done = run_cli("create-user", "bob", "pw-of-bob", env=credentials(f"{misbehaving}/html"))
    line = one_line_error(done)
    assert "answered POST /token with HTTP 200 but not JSON (type text/html)" in line
    assert "is OGDC_API_URL the ogdc-hooks API?" in line
    assert_no_secret(done)


def test_error_page_without_detail(run_cli: CliRunner, misbehaving: str) -> None:
    done = run_cli("users", "list", env=credentials(f"{misbehaving}/gateway"))
    line = one_line_error(done)
    assert "answered POST /token with HTTP 502: no details (answer of type text/html)" in line


def test_redirect_is_reported_not_followed(run_cli: CliRunner, misbehaving: str) -> None:
    done = run_cli("users", "list", env=credentials(f"{misbehaving}/moved"))
    line = one_line_error(done)
    assert "redirect (HTTP 307) to https://api.example.org/ogdc/api/token" in line
    assert "set OGDC_API_URL" in line


def test_secrets_echoed_by_a_server_are_scrubbed(run_cli: CliRunner, misbehaving: str) -> None:
    done = run_cli("users", "list", env=credentials(f"{misbehaving}/echo"))
    line = one_line_error(done)
    assert "HTTP 400: password ********** is weird" in line
    assert_no_secret(done)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OGDC_API_URL": "ftp://example.org"}, "OGDC_API_URL must be an http(s) URL"),
        ({"OGDC_API_TIMEOUT": "soon"}, "OGDC_API_TIMEOUT must be a positive number"),
        ({"OGDC_API_TIMEOUT": "-1"}, "OGDC_API_TIMEOUT must be a positive number"),
        ({}, "the API needs a login: set OGDC_API_USERNAME and OGDC_API_PASSWORD"),
        ({"OGDC_API_USERNAME": "admin"}, "the API needs a login"),
    ],
)
def test_bad_configuration(run_cli: CliRunner, env: dict[str, str], expected: str) -> None:
    url = {"OGDC_API_URL": f"http://127.0.0.1:{closed_port()}"}
    assert expected in one_line_error(run_cli("users", "list", env={**url, **env}))
