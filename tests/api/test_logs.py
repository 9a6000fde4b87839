"""Logs: a line per request with its id, JSON on demand, and never a secret."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ogdc_hooks.api.errors import error_middleware
from ogdc_hooks.api.tracing import tracing_middleware
from ogdc_hooks.logs import (
    REDACTED,
    JsonFormatter,
    RedactionFilter,
    TextFormatter,
    log_event,
    sane_request_id,
)
from tests.api.conftest import ADMIN_PASSWORD, JWT_KEY, Api
from tests.support.service import Service

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"


def _record(message: str, *args: object, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def _redacted(message: str, *args: object, secrets: tuple[str, ...] = ()) -> str:
    record = _record(message, *args)
    RedactionFilter(secrets).filter(record)
    return record.getMessage()


@pytest.mark.parametrize(
    ("message", "leaked"),
    [
        ("Authorization: Bearer abc.def-123", "abc.def-123"),
        ("header was bearer s3cr3t-token", "s3cr3t-token"),
        (f"token {JWT} rejected", JWT),
        (f"callback?access_token={JWT}&x=1", JWT),
        ("form password=hunter2222&username=bob", "hunter2222"),
        ('{"password": "hunter2222", "username": "bob"}', "hunter2222"),
        ("GITHUB_WEBHOOK_SECRET=whsec-value", "whsec-value"),
        ("client_secret: abcdef123", "abcdef123"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "MIIE"),
    ],
)
def test_the_filter_masks_secret_shapes(message: str, leaked: str) -> None:
    masked = _redacted(message)
    assert leaked not in masked
    assert REDACTED in masked


def test_the_filter_masks_configured_secrets_in_arguments_fields_and_tracebacks() -> None:
    secret = "the-configured-secret"
    assert _redacted("value %s here", secret, secrets=(secret,)) == f"value {REDACTED} here"
    record = _record(
        "event",
        fields={"password": "plain", "note": f"has {secret}", "nested": {"api_token": "t"}},
    )
    try:
        raise ValueError(f"failed with {secret}")
    except ValueError:
        record.exc_info = sys.exc_info()
    RedactionFilter([secret]).filter(record)
    assert record.fields == {
        "password": REDACTED,
        "note": f"has {REDACTED}",
        "nested": {"api_token": REDACTED},
    }
    assert record.exc_text is not None
    assert secret not in record.exc_text
    assert "ValueError" in record.exc_text
    for formatter in (TextFormatter(), JsonFormatter()):
        assert secret not in formatter.format(record)


def test_the_filter_leaves_ordinary_lines_alone() -> None:
    line = "request method=GET path=/users/alice status=200 duration_ms=3.1"
    assert _redacted(line, secrets=("x",)) == line  # too short to be a secret worth masking


def test_formats_put_fields_on_one_line() -> None:
    record = _record("request", fields={"path": "/a b", "status": 200})
    text = TextFormatter().format(record)
    assert text.endswith('INFO test request path="/a b" status=200')
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "request"
    assert document["path"] == "/a b"
    assert document["status"] == 200


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc-123", True),
        ("7f3c.b2:9_x", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("new\nline", False),
        ("", False),
        (None, False),
    ],
)
def test_only_a_sane_request_id_is_kept(incoming: str | None, kept: bool) -> None:
    chosen = sane_request_id(incoming)
    assert (chosen == incoming) is kept
    if not kept:
        assert len(chosen) == 32


@pytest.fixture
def json_api(api_env: dict[str, str]) -> Iterator[Api]:
    with Service({**api_env, "OGDC_LOG_FORMAT": "json"}) as service:
        yield Api(service)


def test_json_logs_a_line_per_request_with_its_id_and_no_secret(json_api: Api) -> None:
    api = json_api
    token = api.admin_token()
    password = "member password 123"
    created = api.call(
        "POST",
        "/create_user",
        token,
        data={"username": "member", "password": password},
        headers={"X-Request-Id": "trace-create-1"},
    )
    assert created.headers["X-Request-Id"] == "trace-create-1"
    member_token = api.login("member", password)
    api.call("GET", "/user", member_token)
    api.call("GET", "/user", member_token + "tampered")
    api.token("member", "a wrong password guess")
    api.call("PATCH", "/users/member", token, json={"password": "another password 1"})
    odd = api.call("GET", "/healthz", headers={"X-Request-Id": "not sane!"})
    assert odd.headers["X-Request-Id"] != "not sane!"

    text = api.service.log_text()
    for secret in (
        password,
        "another password 1",
        "a wrong password guess",
        ADMIN_PASSWORD,
        JWT_KEY,
        token,
        member_token,
    ):
        assert secret not in text
    lines = api.service.log_lines()
    assert len(lines) == len(text.strip().splitlines()), "every line is JSON"
    requests_logged = [line for line in lines if line["message"] == "request"]
    assert len(requests_logged) >= 8
    for line in requests_logged:
        assert {"method", "path", "status", "duration_ms", "request_id"} <= set(line)
    create = [line for line in lines if line.get("request_id") == "trace-create-1"]
    assert {line["message"] for line in create} == {"user_created", "request"}
    assert any(line["message"] == "login_failed" for line in lines)
    assert any(line["message"] == "auth_rejected" for line in lines)


def _app_with(handler: Callable[[web.Request], Any]) -> web.Application:
    app = web.Application(middlewares=[tracing_middleware, error_middleware])
    app.router.add_get("/boom", handler)
    return app


async def test_an_unexpected_exception_is_a_logged_500_without_traceback_to_the_client(
    aiohttp_client: Callable[[web.Application], Any], caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("internal detail the client must not see")

    client: TestClient[web.Request, web.Application] = await aiohttp_client(_app_with(boom))
    response = await client.get("/boom", headers={"X-Request-Id": "boom-1"})
    assert response.status == 500
    assert await response.json() == {"detail": "internal server error (request id boom-1)"}
    assert "internal detail" not in await response.text()
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "internal detail" in str(errors[0].exc_info[1])


def test_log_event_carries_fields(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        log_event(logging.getLogger("ogdc_hooks.test"), "thing_happened", count=3)
    assert caplog.records[-1].fields == {"count": 3}
