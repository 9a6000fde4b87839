"""A `CommitReport` as a commit-status request (token mode); pure.

Statuses have no neutral state and no annotations: a dry run is a success
(nothing failed, it was deliberately not submitted), our own errors are
`error`, and the description is the report's title cut to 140 characters (for a failed
run it names the failure's class). The link is the run's page on this service when the
report has one (`OGDC_PUBLIC_URL`: `GET /runs/{id}` shows the failure's log tails), else
the Argo workflow.
"""

from __future__ import annotations

from typing import Any

from ogdc_hooks.forges.base import CommitReport, RunState
from ogdc_hooks.forges.text import clean, fit_chars, safe_url

DESCRIPTION_CHARS = 140

STATES = {
    RunState.QUEUED: "pending",
    RunState.SUBMITTED: "pending",
    RunState.RUNNING: "pending",
    RunState.SUCCEEDED: "success",
    RunState.DRY_RUN: "success",
    RunState.FAILED: "failure",
    RunState.INVALID: "failure",
    RunState.REJECTED: "failure",
    RunState.ERROR: "error",
    RunState.TIMED_OUT: "failure",
    RunState.CANCELLED: "failure",
}


def status_body(report: CommitReport) -> dict[str, Any]:
    """The body of `POST /repos/{owner}/{repo}/statuses/{sha}` for this report."""
    body: dict[str, Any] = {
        "state": STATES[report.state],
        "context": report.name,
        "description": fit_chars(clean(report.title), DESCRIPTION_CHARS),
    }
    target_url = safe_url(report.run_url) or safe_url(report.details_url)
    if target_url:
        body["target_url"] = target_url
    return body
