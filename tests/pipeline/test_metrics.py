"""A push, end to end, as `/metrics` counts it: each counter and histogram moved by what
happened, and the database's gauges showing the finished run."""

from __future__ import annotations

from tests.pipeline.conftest import Stack, wait_for
from tests.pipeline.test_follow import CHECK, _pushed
from tests.support.scrape import value


async def _scrape(stack: Stack) -> str:
    async with stack.session.get(stack.service.url + "/metrics") as answer:
        assert answer.status == 200
        return await answer.text()


async def test_a_push_moves_the_counters_and_histograms_by_what_happened(stack: Stack) -> None:
    before = await _scrape(stack)
    after_commit, name = await _pushed(stack)
    stack.argo.set_phase(name, "Running")
    stack.argo.set_phase(name, "Succeeded")
    await stack.check_completed(after_commit, CHECK)

    async def settled() -> str | None:
        text = await _scrape(stack)
        done = value(text, "ogdc_runs", state="succeeded") == 1
        reported = value(text, "ogdc_job_outcomes_total", kind="report", outcome="done") >= 1
        return text if done and reported else None

    after = await wait_for(settled, within=30, what="the scrape to show the finished run")

    def moved(sample: str, **labels: str) -> float:
        return value(after, sample, **labels) - value(before, sample, **labels)

    assert moved("ogdc_webhook_deliveries_total", forge="github", event="push", answer="accepted")
    assert moved("ogdc_webhook_deliveries_total") == 1
    for kind in ("push", "submit"):  # a push prepares its runs itself
        assert moved("ogdc_job_outcomes_total", kind=kind, outcome="done") == 1, kind
    assert moved("ogdc_job_outcomes_total", outcome="retried") == 0
    assert moved("ogdc_job_outcomes_total", outcome="failed") == 0
    assert moved("ogdc_run_submit_seconds_count") == 1
    assert moved("ogdc_run_submit_seconds_bucket", le="+Inf") == 1
    assert moved("ogdc_run_duration_seconds_count", state="succeeded") == 1
    assert moved("ogdc_run_duration_seconds_count") == 1
    assert moved("ogdc_argo_calls_total", outcome="ok") >= 1  # the submission, at least
    assert moved("ogdc_argo_calls_total", outcome="transient") == 0
    assert moved("ogdc_github_calls_total", outcome="ok") >= 2  # a token and the check run
    assert value(after, "ogdc_github_rate_limit_remaining", credential="installation") > 0
    assert value(after, "ogdc_runs") == 1
    assert value(after, "ogdc_metrics_database_up") == 1
    assert moved("ogdc_run_follow_endings_total") == 0
