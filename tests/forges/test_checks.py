"""Building check-run and status requests from commit reports (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ogdc_hooks.forges.base import CommitReport, ReportAction, RunState
from ogdc_hooks.forges.github.checks import (
    ANNOTATIONS_PER_REQUEST,
    MAX_ANNOTATIONS,
    OUTPUT_BYTES,
    annotation_key,
    check_actions,
    check_run_requests,
    check_status,
)
from ogdc_hooks.forges.github.statuses import status_body
from ogdc_hooks.forges.text import ELLIPSIS, fit_bytes, fit_chars
from ogdc_hooks.recipes.problems import Problem

NOW = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
TOKEN = "ghs_" + "k" * 36


def make_report(state: RunState = RunState.QUEUED, **changes: object) -> CommitReport:
    fields: dict[str, object] = {
        "repository": "nsidc/ogdc-recipes",
        "commit_sha": "b" * 40,
        "name": "ogdc/seal-tags",
        "state": state,
        "title": "Queued",
        "summary": "Waiting for a worker.",
        "external_id": "run-1",
    }
    fields.update(changes)
    return CommitReport(**fields)  # type: ignore[arg-type]


def problems(count: int) -> tuple[Problem, ...]:
    return tuple(
        Problem("recipes/seal-tags/meta.yml", line, 1, "input", f"problem {line}")
        for line in range(1, count + 1)
    )


@pytest.mark.parametrize(
    ("state", "status", "conclusion"),
    [
        (RunState.QUEUED, "queued", None),
        (RunState.SUBMITTED, "in_progress", None),
        (RunState.RUNNING, "in_progress", None),
        (RunState.SUCCEEDED, "completed", "success"),
        (RunState.FAILED, "completed", "failure"),
        (RunState.INVALID, "completed", "failure"),
        (RunState.REJECTED, "completed", "failure"),
        (RunState.ERROR, "completed", "failure"),
        (RunState.TIMED_OUT, "completed", "timed_out"),
        (RunState.DRY_RUN, "completed", "neutral"),
    ],
)
def test_each_state_maps_to_a_check_status_and_conclusion(
    state: RunState, status: str, conclusion: str | None
) -> None:
    (body,) = check_run_requests(make_report(state), now=NOW, create=False)
    assert check_status(state) == status
    assert body["status"] == status
    assert body.get("conclusion") == conclusion
    assert ("completed_at" in body) == (conclusion is not None)


def test_a_queued_report_creates_a_check_run_without_times() -> None:
    (body,) = check_run_requests(make_report(), now=NOW, create=True)
    assert body == {
        "status": "queued",
        "name": "ogdc/seal-tags",
        "head_sha": "b" * 40,
        "external_id": "run-1",
        "output": {"title": "Queued", "summary": "Waiting for a worker."},
    }


def test_a_finished_report_created_at_once_carries_both_times() -> None:
    (body,) = check_run_requests(make_report(RunState.SUCCEEDED), now=NOW, create=True)
    assert body["started_at"] == body["completed_at"] == "2026-05-04T03:02:01Z"
    assert body["conclusion"] == "success"


def test_an_update_does_not_rename_or_move_the_check_run() -> None:
    (body,) = check_run_requests(make_report(RunState.RUNNING), now=NOW, create=False)
    assert "name" not in body and "head_sha" not in body and "started_at" not in body


def test_details_url_is_sent_only_when_it_is_a_plain_http_url() -> None:
    url = "https://argo.example/workflows/qgnet/ogdc-seal-abc"
    running = make_report(RunState.RUNNING, details_url=url)
    assert check_run_requests(running, now=NOW, create=False)[0]["details_url"] == url
    for bad in ("ftp://argo.example/x", "https://user:pw@argo.example/x", "not a url"):
        body = check_run_requests(make_report(details_url=bad), now=NOW, create=False)[0]
        assert "details_url" not in body


def test_120_problems_become_three_requests_of_at_most_50_annotations() -> None:
    report = make_report(RunState.INVALID, problems=problems(120))
    bodies = check_run_requests(report, now=NOW, create=True)
    counts = [len(body["output"]["annotations"]) for body in bodies]
    assert counts == [50, 50, 20]
    assert bodies[0]["name"] == "ogdc/seal-tags" and bodies[0]["conclusion"] == "failure"
    assert all(set(body) == {"output"} for body in bodies[1:])  # continuations only add
    lines = [a["start_line"] for body in bodies for a in body["output"]["annotations"]]
    assert lines == list(range(1, 121))
    assert bodies[0]["output"]["annotations"][0] == {
        "path": "recipes/seal-tags/meta.yml",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "failure",
        "message": "input: problem 1",
    }


def test_exactly_50_problems_fit_one_request_and_none_sends_no_annotations_key() -> None:
    bodies = check_run_requests(
        make_report(RunState.INVALID, problems=problems(ANNOTATIONS_PER_REQUEST)),
        now=NOW,
        create=True,
    )
    assert len(bodies) == 1 and len(bodies[0]["output"]["annotations"]) == 50
    (plain,) = check_run_requests(make_report(RunState.INVALID), now=NOW, create=True)
    assert "annotations" not in plain["output"] and "text" not in plain["output"]


def test_annotations_the_check_run_already_has_are_not_sent_again() -> None:
    report = make_report(RunState.INVALID, problems=problems(120))
    first_round = check_run_requests(report, now=NOW, create=True)
    sent = [annotation_key(a) for a in first_round[0]["output"]["annotations"]]
    bodies = check_run_requests(report, now=NOW, create=False, already_annotated=sent)
    counts = [len(body["output"].get("annotations", [])) for body in bodies]
    assert counts == [50, 20]
    assert bodies[0]["output"]["annotations"][0]["start_line"] == 51


def test_annotations_are_capped_and_the_text_lists_every_problem() -> None:
    report = make_report(RunState.INVALID, problems=problems(MAX_ANNOTATIONS + 30))
    bodies = check_run_requests(report, now=NOW, create=True)
    assert sum(len(b["output"].get("annotations", [])) for b in bodies) == MAX_ANNOTATIONS
    assert len(bodies) == MAX_ANNOTATIONS // ANNOTATIONS_PER_REQUEST
    text = bodies[0]["output"]["text"]
    assert f"{MAX_ANNOTATIONS + 30} problem(s) found; the first {MAX_ANNOTATIONS} are shown" in text
    assert f"meta.yml:{MAX_ANNOTATIONS + 30}:1: input: problem {MAX_ANNOTATIONS + 30}" in text


def test_problem_text_cannot_break_out_of_its_code_block() -> None:
    sneaky = Problem("recipes/x/meta.yml", 1, 1, "", "```\n# Pwned\n````")
    (body,) = check_run_requests(
        make_report(RunState.INVALID, problems=(sneaky,)), now=NOW, create=True
    )
    text = body["output"]["text"]
    assert "\n`````\n" in text  # fence longer than the longest run of backticks inside


def test_a_summary_over_65535_bytes_is_cut_on_a_character_boundary_with_a_note() -> None:
    summary = "é€😀" * 20_000  # 9 bytes per round, 180,000 bytes
    (body,) = check_run_requests(make_report(summary=summary), now=NOW, create=True)
    cut = body["output"]["summary"]
    encoded = cut.encode("utf-8")
    assert len(encoded) <= OUTPUT_BYTES
    assert len(encoded) > OUTPUT_BYTES - 200  # cut no further than needed
    assert "cut: 180,000 bytes did not fit in GitHub's 65,535" in cut
    assert summary.startswith(cut.split("\n\n")[0])


@pytest.mark.parametrize("limit", range(100, 140))
def test_fit_bytes_never_splits_a_character(limit: int) -> None:
    text = "a€😀é" * 40
    fitted = fit_bytes(text, limit)
    assert len(fitted.encode("utf-8")) <= limit
    assert text.startswith(fitted.split("\n\n")[0])


def test_text_that_fits_exactly_is_not_cut() -> None:
    text = "€" * (OUTPUT_BYTES // 3)  # 65,535 bytes
    assert fit_bytes(text, OUTPUT_BYTES) == text
    assert fit_bytes(text + "x", OUTPUT_BYTES) != text + "x"


def test_the_title_is_cut_to_255_characters() -> None:
    (body,) = check_run_requests(make_report(title="t" * 400), now=NOW, create=True)
    assert len(body["output"]["title"]) == 255
    assert body["output"]["title"].endswith(ELLIPSIS)


def test_secrets_are_scrubbed_from_every_text_sent() -> None:
    report = make_report(
        RunState.ERROR,
        title=f"clone failed with {TOKEN}",
        summary=f"git said: https://x-access-token:{TOKEN}@github.com/o/r.git",
        problems=(Problem("recipes/x/meta.yml", 2, 1, "", f"Bearer {TOKEN}"),),
    )
    (body,) = check_run_requests(report, now=NOW, create=True)
    assert TOKEN not in repr(body)
    assert TOKEN not in repr(status_body(report))


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (RunState.QUEUED, "pending"),
        (RunState.SUBMITTED, "pending"),
        (RunState.RUNNING, "pending"),
        (RunState.SUCCEEDED, "success"),
        (RunState.DRY_RUN, "success"),
        (RunState.FAILED, "failure"),
        (RunState.INVALID, "failure"),
        (RunState.REJECTED, "failure"),
        (RunState.ERROR, "error"),
        (RunState.TIMED_OUT, "failure"),
    ],
)
def test_each_state_maps_to_a_commit_status(state: RunState, expected: str) -> None:
    assert status_body(make_report(state))["state"] == expected


def test_a_status_names_the_recipe_links_the_workflow_and_keeps_140_characters() -> None:
    url = "https://argo.example/workflows/qgnet/w"
    body = status_body(make_report(RunState.RUNNING, title="r" * 300, details_url=url))
    assert body["context"] == "ogdc/seal-tags"
    assert body["target_url"] == url
    assert len(body["description"]) == 140 and body["description"].endswith(ELLIPSIS)
    assert status_body(make_report(title="short"))["description"] == "short"
    assert "target_url" not in status_body(make_report(details_url=None))


def test_fit_chars_keeps_short_text() -> None:
    assert fit_chars("x" * 140, 140) == "x" * 140
    assert fit_chars("x" * 141, 140) == "x" * 139 + ELLIPSIS


def test_buttons_fit_githubs_limits_and_an_update_without_them_takes_them_away() -> None:
    buttons = check_actions(list(ReportAction))
    assert [b["identifier"] for b in buttons] == ["cancel", "retry"]
    for button in buttons:  # docs.github.com/en/rest/checks/runs: 20, 40 and 20 characters
        assert len(button["label"]) <= 20 and len(button["description"]) <= 40
        assert len(button["identifier"]) <= 20
    running = make_report(RunState.RUNNING, actions=(ReportAction.CANCEL,))
    [created] = check_run_requests(running, now=NOW, create=True)
    assert created["actions"] == check_actions([ReportAction.CANCEL])
    [ended] = check_run_requests(make_report(RunState.CANCELLED), now=NOW, create=False)
    assert (ended["actions"], ended["conclusion"]) == ([], "cancelled")
    assert "actions" not in check_run_requests(make_report(), now=NOW, create=True)[0]
