"""`/metrics`: Prometheus counts and latency by route template, with nothing sensitive."""

from __future__ import annotations

import re

from tests.api.conftest import ADMIN_PASSWORD, Api


def _count(text: str, route: str, method: str, status: str) -> float:
    pattern = (
        rf'ogdc_http_requests_total\{{method="{method}",route="{re.escape(route)}",'
        rf'status="{status}"\}} ([0-9.e+]+)'
    )
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_requests_by_route_template_and_status(api: Api) -> None:
    before = api.call("GET", "/metrics").text
    token = api.admin_token()
    for _ in range(3):
        api.call("GET", "/user", token)
    api.call("GET", "/user")
    api.call("DELETE", "/users/someone-secretive", token)
    api.call("GET", "/no/such/thing")
    response = api.call("GET", "/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    after = response.text
    assert _count(after, "/user", "GET", "200") - _count(before, "/user", "GET", "200") == 3
    assert _count(after, "/user", "GET", "401") - _count(before, "/user", "GET", "401") == 1
    deleted = _count(after, "/users/{name}", "DELETE", "404")
    assert deleted - _count(before, "/users/{name}", "DELETE", "404") == 1
    assert _count(after, "unmatched", "GET", "404") >= 1
    bucket = 'ogdc_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/user"}'
    assert bucket in after
    assert "process_resident_memory_bytes" in after
    for sensitive in ("someone-secretive", "/no/such/thing", token, ADMIN_PASSWORD):
        assert sensitive not in after
