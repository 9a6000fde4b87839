"""Hostile input to the token API (issue 18): every refusal is a 4xx with the JSON error in
words, nothing reaches the log as a traceback, and the log cannot be forged."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.api.conftest import Api


@pytest.fixture(scope="module")
def admin(api: Api) -> str:
    return api.admin_token()


@pytest.fixture(autouse=True)
def no_traceback(api: Api) -> Iterator[None]:
    yield
    log = api.service.log_text()
    assert "Traceback" not in log and "unhandled error" not in log


def _detail(api: Api, method: str, path: str, admin: str, status: int, **kwargs: object) -> str:
    response = api.call(method, path, admin, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, (path, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    return str(response.json()["detail"])


def test_runs_filters_with_a_nul_or_an_offset_past_bigint_are_422(api: Api, admin: str) -> None:
    for query in ("repository=a%00b", "commit=%00", "recipe=x%00"):
        detail = _detail(api, "GET", f"/runs?{query}", admin, 422)
        assert "control characters" in detail
    detail = _detail(api, "GET", f"/runs?offset={2**63}", admin, 422)
    assert "offset" in detail


def test_a_workflow_name_with_a_nul_is_404(api: Api, admin: str) -> None:
    for path in ("/status/a%00b", "/output/a%00b"):
        detail = _detail(api, "GET", path, admin, 404)
        assert detail == "No run has that id or workflow name; GET /runs lists them."


def test_deeply_nested_json_is_400(api: Api, admin: str) -> None:
    body = "[" * 100_000
    headers = {"Content-Type": "application/json"}
    for path in ("/submit", "/create_user"):
        detail = _detail(api, "POST", path, admin, 400, data=body, headers=headers)
        assert detail == "The body's JSON is nested too deeply."
    digits = '{"username": ' + "9" * 5000 + "}"
    detail = _detail(api, "POST", "/create_user", admin, 400, data=digits, headers=headers)
    assert detail == "The body is not valid JSON."


def test_submit_refuses_nul_and_locations_longer_than_a_run_keeps(api: Api, admin: str) -> None:
    url = "https://github.com/qgnet/recipes.git"
    cases = [
        ({"recipe_path": url, "ref": "ma\x00in", "path": "recipes/x"}, "ref"),
        ({"recipe_path": url + "\x00", "ref": "main", "path": "recipes/x"}, "recipe_path"),
        ({"recipe_path": url, "ref": "main", "path": "recipes/" + "x" * 300}, "path"),
        ({"recipe_path": url + "/" + "x" * 300, "ref": "main", "path": "recipes/x"}, "recipe_path"),
    ]
    for body, field in cases:
        detail = _detail(api, "POST", "/submit", admin, 422, json=body)
        assert detail.startswith(f"{field}:"), detail


def _raw(api: Api, request: bytes) -> bytes:
    host, port = api.service.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_malformed_http_is_one_log_line(api: Api) -> None:
    before = api.service.log_text().count("malformed_request")
    answer = _raw(api, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert answer.split(b" ")[1] == b"400"
    log = api.service.log_text()
    assert log.count("malformed_request") == before + 1
    assert "Error handling request" not in log


def test_control_characters_of_a_path_are_escaped_in_the_log(api: Api) -> None:
    # Percent-encoded, so that the request parses and the path decodes to ESC and a newline.
    request = b"GET /no-such/%1B[31mred%0Aforged HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert _raw(api, request).split(b" ")[1] == b"404"
    log = api.service.log_text()
    assert "\x1b[31m" not in log
    assert "\\u001b[31mred\\nforged" in log


def test_the_workflow_route_is_documented_as_an_object(api: Api) -> None:
    document = api.call("GET", "/openapi.json").json()
    answer = document["paths"]["/runs/{run_id}/workflow"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/WorkflowManifest"}
    assert document["components"]["schemas"]["WorkflowManifest"]["type"] == "object"
