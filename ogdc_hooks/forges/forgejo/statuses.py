"""A `CommitReport` as a Forgejo commit-status request; pure.

A commit status is all Forgejo shows (no check runs, no annotations), so the description
carries the title and, for an invalid recipe, the first problem with its file and line.
States: Forgejo's pending, success, error, failure (warning is not used: a dry run is a
success, as on GitHub's statuses; nothing failed). Forgejo stores the description in a
TEXT column (65535 bytes on MySQL, its tightest database); ours are kept far shorter.
"""

from __future__ import annotations

from typing import Any

from ogdc_hooks.forges.base import CommitReport, RunState
from ogdc_hooks.forges.text import clean, fit_chars, safe_url

DESCRIPTION_CHARS = 1000  # at most 4000 bytes of UTF-8, well within Forgejo's 65535

_FINISHED = {RunState.SUCCEEDED: "success", RunState.DRY_RUN: "success", RunState.ERROR: "error"}


def state_of(state: RunState) -> str:
    """Unfinished runs are pending; of the finished, every one that is not a success or our
    own error is a failure (timed out included: Forgejo has no state of its own for it)."""
    return _FINISHED.get(state, "failure") if state.finished else "pending"


def description(report: CommitReport) -> str:
    """The title, and the first error (`path:line:column: message`) when there is one."""
    text = report.title or report.name
    first = next((problem for problem in report.problems if problem.severity == "error"), None)
    if first is not None:
        text = f"{text}. First: {first}"
    return fit_chars(" ".join(clean(text).split()), DESCRIPTION_CHARS)


def status_body(report: CommitReport) -> dict[str, Any]:
    """The body of `POST /repos/{owner}/{repo}/statuses/{sha}` for this report."""
    body: dict[str, Any] = {
        "state": state_of(report.state),
        "context": report.name,
        "description": description(report),
    }
    target_url = safe_url(report.run_url) or safe_url(report.details_url)
    if target_url:
        body["target_url"] = target_url
    return body
