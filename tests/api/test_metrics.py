"""`/metrics`: Prometheus counts and latency by route template, with nothing sensitive; the
database's gauges; and the alert rules, whose every metric a running service exposes."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import yaml
from sqlalchemy.ext.asyncio import create_async_engine

from ogdc_hooks.metrics import DatabaseGauges
from tests.api.conftest import ADMIN_PASSWORD, Api
from tests.support.scrape import exposed_names, value

RULES = Path(__file__).resolve().parents[2] / "deploy/alerts/prometheusrule.yaml"
REQUIRED_ALERTS = {
    "OgdcQueueStuck",
    "OgdcOldestJobTooOld",
    "OgdcReconciliationFailing",
    "OgdcReportsFailing",
}


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


def test_the_database_gauges_come_from_postgresql_at_scrape_time(api: Api) -> None:
    text = api.call("GET", "/metrics").text
    assert value(text, "ogdc_metrics_database_up") == 1
    assert value(text, "ogdc_queue_oldest_ready_job_age_seconds") >= 0
    assert {"ogdc_queue_jobs", "ogdc_runs"} <= exposed_names(text)


async def test_a_database_that_never_answers_costs_a_scrape_its_bound_and_says_so() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks
        port = silent.getsockname()[1]
        engine = create_async_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{port}/none")
        gauges = DatabaseGauges(timeout_s=0.5)
        # Only the gauges' own bound can end this before asyncpg's 60-second connect timeout.
        await asyncio.wait_for(gauges.refresh(engine), 30)
        await engine.dispose()
    families = {family.name: family for family in gauges.collect()}
    assert list(families) == ["ogdc_metrics_database_up"]
    assert families["ogdc_metrics_database_up"].samples[0].value == 0


def _rules() -> list[dict[str, object]]:
    document = yaml.safe_load(RULES.read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def test_the_alert_rules_cover_the_promised_alerts_and_are_complete() -> None:
    rules = _rules()
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}  # type: ignore[index]
        assert rule["annotations"]["summary"]  # type: ignore[index]


def test_every_metric_the_alert_rules_use_is_exposed_by_the_service(api: Api) -> None:
    exposed = exposed_names(api.call("GET", "/metrics").text)
    used = {name for rule in _rules() for name in re.findall(r"\bogdc_\w+", str(rule["expr"]))}
    assert used, "the rules name no ogdc metric"
    assert used <= exposed, f"not exposed by /metrics: {sorted(used - exposed)}"


def test_a_delivery_refused_before_its_signature_is_counted_as_unverified(api: Api) -> None:
    labels = {"forge": "github", "event": "unverified", "answer": "unavailable"}
    before = value(api.call("GET", "/metrics").text, "ogdc_webhook_deliveries_total", **labels)
    answer = api.call(
        "POST", "/webhooks/github", headers={"X-GitHub-Event": "made-up-event"}, json={}
    )
    assert answer.status_code == 503  # this service has no webhook secret
    after = api.call("GET", "/metrics").text
    assert value(after, "ogdc_webhook_deliveries_total", **labels) - before == 1
    assert "made-up-event" not in after
