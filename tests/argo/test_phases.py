"""Argo workflow status -> our run state, message and failed steps (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from ogdc_hooks.argo.phases import FailedStep, output_artifact_node, progress_of
from ogdc_hooks.runstate import RunState


def wf(status: dict[str, Any] | None) -> dict[str, Any]:
    return {"metadata": {"name": "w-abcde"}, **({"status": status} if status is not None else {})}


@pytest.mark.parametrize(
    ("phase", "state"),
    [
        ("Pending", RunState.SUBMITTED),
        ("Running", RunState.RUNNING),
        ("Succeeded", RunState.SUCCEEDED),
        ("Failed", RunState.FAILED),
        ("Error", RunState.FAILED),
        ("Paused", RunState.SUBMITTED),  # unknown to us
        ("", RunState.SUBMITTED),
        (None, RunState.SUBMITTED),
    ],
)
def test_phase_maps_to_state(phase: str | None, state: RunState) -> None:
    assert progress_of(wf({"phase": phase})).state is state


@pytest.mark.parametrize("status", [None, {}, "garbage", {"nodes": "garbage"}])
def test_missing_or_odd_status_is_submitted(status: Any) -> None:
    assert progress_of(wf(status)).state is RunState.SUBMITTED


def test_failure_names_the_failed_steps_in_start_order() -> None:
    status = {
        "phase": "Failed",
        "message": "child 'w-abcde-2' failed",
        "nodes": {
            "w-abcde": {"type": "Steps", "phase": "Failed", "displayName": "w-abcde"},
            "w-abcde-3": {
                "type": "Pod",
                "phase": "Error",
                "displayName": "publish",
                "message": "OOMKilled",
                "startedAt": "2026-01-01T00:00:09Z",
            },
            "w-abcde-2": {
                "type": "Pod",
                "phase": "Failed",
                "displayName": "step-0",
                "message": "Error (exit code 1)",
                "startedAt": "2026-01-01T00:00:01Z",
            },
            "w-abcde-4": {"type": "Pod", "phase": "Succeeded", "displayName": "fetch"},
            "w-abcde-5": {"type": "Retry", "phase": "Failed", "displayName": "retry-group"},
        },
    }
    progress = progress_of(wf(status))
    assert progress.state is RunState.FAILED
    assert progress.message == "child 'w-abcde-2' failed"
    assert progress.failed_steps == (
        FailedStep("step-0", "Error (exit code 1)"),
        FailedStep("publish", "OOMKilled"),
    )
    assert progress.summary == (
        "child 'w-abcde-2' failed; step-0: Error (exit code 1); publish: OOMKilled"
    )


def test_failed_steps_only_reported_for_failed_workflows() -> None:
    status = {"phase": "Running", "nodes": {"n": {"type": "Pod", "phase": "Failed"}}}
    assert progress_of(wf(status)).failed_steps == ()


def test_pending_keeps_argos_message() -> None:
    progress = progress_of(wf({"phase": "Pending", "message": "Unschedulable: 0/3 nodes"}))
    assert (progress.state, progress.message) == (RunState.SUBMITTED, "Unschedulable: 0/3 nodes")
    assert progress_of(wf({"phase": "Running"})).summary == "running"


def test_output_artifact_node_finds_published_zip() -> None:
    status = {
        "nodes": {
            "a": {"outputs": {"artifacts": [{"name": "output-dir"}]}},
            "b": {"outputs": {"artifacts": [{"name": "published_zip", "s3": {"key": "k"}}]}},
            "c": {},
        }
    }
    assert output_artifact_node(wf(status), "published_zip") == "b"
    assert output_artifact_node(wf(status), "other") is None
    assert output_artifact_node(wf(None), "published_zip") is None


@pytest.mark.parametrize(
    ("progress", "steps"),
    [("3/10", "3/10"), ("0/1", "0/1"), ("3 of 10", None), (7, None), (None, None)],
)
def test_argos_progress_counts_steps_only_in_its_own_form(progress: Any, steps: str | None) -> None:
    assert progress_of({"status": {"phase": "Running", "progress": progress}}).steps == steps
