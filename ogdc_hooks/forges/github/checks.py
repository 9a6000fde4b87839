"""A `CommitReport` as GitHub check-run requests (App mode); pure.

GitHub accepts at most 50 annotations a request and appends the annotations
of every update, so a report becomes one create-or-update request followed by
one update per further batch of 50. Output summary and text stay within
65535 bytes, the title within 255 characters; all text is redacted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from ogdc_hooks import markdown
from ogdc_hooks.forges.base import CommitReport, ReportAction, RunState
from ogdc_hooks.forges.text import clean, fit_bytes, fit_chars, safe_url
from ogdc_hooks.recipes.problems import Problem

OUTPUT_BYTES = 65535  # output.summary and output.text
TITLE_CHARS = 255
ANNOTATION_MESSAGE_BYTES = 65535  # "message: 64 KB"
ANNOTATIONS_PER_REQUEST = 50
MAX_ANNOTATIONS = 500  # 10 requests; more would only burn the secondary rate limit

AnnotationKey = tuple[str, int, int, str, str]

# The check run's buttons (`actions`: at most 3; label at most 20 characters, description
# 40, identifier 20: https://docs.github.com/en/rest/checks/runs#create-a-check-run).
# Pressing one sends `check_run.requested_action` with the identifier.
BUTTONS = {
    ReportAction.CANCEL: {"label": "Cancel", "description": "Stop this run's workflow in Argo"},
    ReportAction.RETRY: {
        "label": "Retry failed steps",
        "description": "Run only the failed steps again",
    },
}

_STATUS = {
    RunState.QUEUED: "queued",
    RunState.SUBMITTED: "in_progress",
    RunState.RUNNING: "in_progress",
}

# ERROR maps to failure, not action_required: action_required asks the person
# to follow details_url and act there, but an error of ours (a permanent
# GitHub/Argo refusal, a vanished workflow) has nothing to act on at a link;
# failure blocks a protected branch just as well and reads honestly.
CONCLUSIONS = {
    RunState.SUCCEEDED: "success",
    RunState.FAILED: "failure",
    RunState.INVALID: "failure",
    RunState.REJECTED: "failure",
    RunState.ERROR: "failure",
    RunState.TIMED_OUT: "timed_out",
    RunState.DRY_RUN: "neutral",
    RunState.CANCELLED: "cancelled",
}


def check_status(state: RunState) -> str:
    """The check-run `status` for a run state."""
    return "completed" if state.finished else _STATUS[state]


def annotation_key(annotation: Mapping[str, Any]) -> AnnotationKey:
    """What makes two annotations the same, to skip ones a check run already has."""
    return (
        str(annotation.get("path")),
        int(annotation.get("start_line") or 0),
        int(annotation.get("end_line") or 0),
        str(annotation.get("annotation_level")),
        str(annotation.get("message")),
    )


def problem_annotation(problem: Problem) -> dict[str, Any]:
    """A GitHub check-run annotation (checks API `output.annotations[]`), as it is."""
    return {
        "path": problem.path,
        "start_line": problem.line,
        "end_line": problem.end_line or problem.line,
        "annotation_level": "failure" if problem.severity == "error" else "warning",
        "message": problem.what,
    }


def annotation(problem: Problem) -> dict[str, Any]:
    """A problem as an annotation whose message is redacted and fits GitHub's limit."""
    body = problem_annotation(problem)
    body["message"] = fit_bytes(clean(body["message"]), ANNOTATION_MESSAGE_BYTES)
    return body


def problems_text(problems: Collection[Problem], annotated: int) -> str:
    """Every problem, one compiler-style line each, in a code block for the check's details."""
    lines = "\n".join(clean(str(problem)) for problem in problems)
    marks = markdown.fence(lines)
    head = f"{len(problems)} problem(s) found"
    if annotated < len(problems):
        head += f"; the first {annotated} are shown as annotations"
    return f"{head}:\n\n{marks}\n{lines}\n{marks}\n"


def _output(report: CommitReport, annotated: int) -> dict[str, Any]:
    output: dict[str, Any] = {
        "title": fit_chars(clean(report.title) or report.name, TITLE_CHARS),
        "summary": fit_bytes(clean(report.summary) or report.title or report.name, OUTPUT_BYTES),
    }
    if report.text:
        output["text"] = fit_bytes(clean(report.text), OUTPUT_BYTES)
    elif report.problems:
        output["text"] = fit_bytes(problems_text(report.problems, annotated), OUTPUT_BYTES)
    return output


def check_actions(actions: Collection[ReportAction]) -> list[dict[str, str]]:
    """The check run's `actions` (an empty list takes earlier buttons away)."""
    return [{**BUTTONS[action], "identifier": action.value} for action in actions]


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_run_requests(
    report: CommitReport,
    *,
    now: datetime,
    create: bool,
    already_annotated: Collection[AnnotationKey] = (),
) -> list[dict[str, Any]]:
    """The bodies to send, in order: the first creates (POST) or updates (PATCH) the check
    run, every further one is a PATCH adding the next batch of at most 50 annotations.

    `now` is UTC. `already_annotated` holds the keys of annotations the check run has
    (from an earlier, interrupted attempt): GitHub would append them a second time.
    """
    candidates = [annotation(problem) for problem in report.problems[:MAX_ANNOTATIONS]]
    skip = set(already_annotated)
    annotations = [item for item in candidates if annotation_key(item) not in skip]
    output = _output(report, annotated=len(candidates))
    batches = [
        annotations[start : start + ANNOTATIONS_PER_REQUEST]
        for start in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)
    ] or [[]]

    first: dict[str, Any] = {"status": check_status(report.state)}
    if create:
        first["name"] = report.name
        first["head_sha"] = report.commit_sha
        if report.state is not RunState.QUEUED:
            first["started_at"] = _timestamp(now)
    if report.external_id:
        first["external_id"] = report.external_id
    details_url = safe_url(report.details_url)
    if details_url:
        first["details_url"] = details_url
    if report.state.finished:
        first["conclusion"] = CONCLUSIONS[report.state]
        first["completed_at"] = _timestamp(now)
    if report.actions or not create:  # an update without buttons takes earlier ones away
        first["actions"] = check_actions(report.actions)
    first["output"] = {**output, "annotations": batches[0]} if batches[0] else output
    return [first] + [{"output": {**output, "annotations": batch}} for batch in batches[1:]]
