"""Failure details: classification of Argo's node statuses, pod logs through the fake Argo
Server (over real HTTP), and how they read on the commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from ogdc_hooks.argo import failures
from ogdc_hooks.argo.client import ArgoClient, ArgoNotFoundError, ArgoTransientError
from ogdc_hooks.argo.engine import ArgoEngine
from ogdc_hooks.cli.runs import failure_lines
from ogdc_hooks.failure import Failure, StepFailure, masked
from ogdc_hooks.forges.github.checks import check_run_requests
from ogdc_hooks.forges.github.statuses import status_body
from ogdc_hooks.pipeline.commit_report import commit_report
from ogdc_hooks.pipeline.failure_report import failure_problems
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.runstate import RunState
from tests.argo.conftest import workflow
from tests.fakes.argo import NODE_FAILURES, FakeArgo

CLASSES = {
    "oom": "out of memory (OOMKilled)",
    "exit": "exit code 2",
    "image": "image pull failure",
    "deadline": "deadline exceeded",
    "deleted": "pod deleted or evicted",
    "evicted": "pod deleted or evicted",
}


@pytest.mark.parametrize(("failure", "expected"), CLASSES.items())
def test_each_node_status_argo_writes_gets_its_class(failure: str, expected: str) -> None:
    phase, message = NODE_FAILURES[failure]
    node = {"phase": phase, "message": message.format(exit_code=2), "displayName": "run-cmd-0"}
    found = failures.classify_node(node)
    assert found.name == expected
    assert found.explanation and found.advice


def test_a_failed_fetch_step_is_an_input_download_explained_by_its_own_last_line() -> None:
    node = {"message": "main: Error (exit code 8)", "displayName": "fetch"}
    found = failures.classify_node(node)
    assert found is failures.INPUT_DOWNLOAD
    explained = failures.with_fetch_message(found, ["fetching", "ERROR 404: Not Found.", ""])
    assert explained.explanation.endswith("ERROR 404: Not Found.")
    older = {"message": "failed with exit code 3", "displayName": "run-cmd-0"}
    assert failures.classify_node(older).name == "exit code 3"  # older controllers' words


def test_pod_names_follow_argos_v1_and_v2_formats() -> None:
    wf = {"metadata": {"name": "seal-abcde"}}
    node = {"id": "seal-abcde-1234", "name": "seal-abcde[0].fetch", "templateName": "fetch"}
    # FNV-1a 32 of "seal-abcde[0].fetch", as Go's hash/fnv computes it
    assert failures.pod_name(wf, node) == "seal-abcde-fetch-" + str(
        failures.fnv32a(b"seal-abcde[0].fetch")
    )
    assert failures.fnv32a(b"hello") == 0x4F9F2CAB
    v1 = {"metadata": {**wf["metadata"], "annotations": {failures.POD_NAME_FORMAT: "v1"}}}
    assert failures.pod_name(v1, node) == "seal-abcde-1234"


async def test_logs_are_read_by_pod_and_tailed_and_a_gone_pod_says_so(
    argo: ArgoClient, fake_argo: FakeArgo
) -> None:
    name = await argo.submit(workflow())
    pod = fake_argo.fail_step(name, "run", "exit", exit_code=2, log=[f"line {i}" for i in range(9)])
    fake_argo.fail_step(name, "publish", "deleted", log=None)  # its pod is gone
    fake_argo.set_phase(name, "Failed", message="child failed")

    assert await argo.pod_logs(name, pod, tail_lines=3) == {pod: ["line 6", "line 7", "line 8"]}
    sent = fake_argo.requests[-1].query
    assert sent["logOptions.container"] == "main" and sent["podName"] == pod

    found = await ArgoEngine(argo).failure(name, lines=2)
    assert found is not None
    by_step = {step.step: step for step in found.steps}
    assert by_step["run"].log_tail == ("line 7", "line 8")
    assert by_step["publish"].pod_gone and not by_step["publish"].log_tail


async def test_an_error_inside_a_200_log_stream_is_raised_or_noted(
    argo: ArgoClient, fake_argo: FakeArgo
) -> None:
    name = await argo.submit(workflow())
    pod = fake_argo.fail_step(name, "run", "oom", log=["allocating"])
    fake_argo.set_phase(name, "Failed")
    fake_argo.break_next_log_stream()
    with pytest.raises(ArgoTransientError, match="transport is closing"):
        await argo.pod_logs(name, pod, tail_lines=5)
    fake_argo.break_next_log_stream()
    lenient = await ArgoEngine(argo).failure(name, lines=5, strict=False)
    assert lenient is not None and "transport is closing" in str(lenient.steps[0].log_error)

    fake_argo.expire(name)  # archived only: Argo's own Get fails inside the stream
    with pytest.raises(ArgoNotFoundError):
        await argo.pod_logs(name, pod, tail_lines=5)


def _run(failure: Failure, state: RunState = RunState.FAILED) -> RunRecord:
    now = datetime.now(UTC)
    return RunRecord(
        **{
            "id": uuid.uuid4(),
            "forge": "github.com",
            "repository": "qgnet/recipes",
            "clone_url": "https://github.com/qgnet/recipes.git",
            "commit_sha": "a" * 40,
            "ref": None,
            "recipe": "recipes/sea-ice",
            "attempt": 1,
            "trigger": "push",
            "requested_by": None,
            "overwrite": False,
            "dry_run": False,
            "state": state,
            "message": "child failed",
            "workflow_name": "sea-ice-xyz",
            "workflow": None,
            "problems": None,
            "check_run_id": None,
            "report_error": None,
            "installation_id": None,
            "delivery_id": None,
            "reports": True,
            "progress": None,
            "created_at": now,
            "updated_at": now,
            "failure": failure.to_json(),
        }
    )


def test_the_check_and_status_carry_class_masked_tail_and_annotations() -> None:
    tail = (
        "recipe.sh:3: gdalinfo: not found",
        "/mnt/checkout/recipes/sea-ice/meta.yml:7:2: bad key",
        "../../etc/passwd:1: outside",
        "export PASSWORD=hunter2-hunter2 token ghp_" + "A" * 36,
        "```` fence breaker",
    )
    failure = masked(
        Failure("exit code 2", "ended 2.", "read it.", (StepFailure("run-cmd-0", "n1", "", tail),)),
        secrets=["ghp_" + "A" * 36],
    )
    report = commit_report(
        _run(failure),
        ui_base="https://argo.example.org",
        namespace="qgnet",
        run_url="https://hooks.example.org/runs/1",
    )
    [body] = check_run_requests(report, now=datetime.now(UTC), create=True)
    text = body["output"]["text"]
    assert "hunter2" not in text and "ghp_" not in text and "recipe.sh:3:" in text
    assert "`````\n" in text  # a longer fence than the log's own backticks
    notes = {(a["path"], a["start_line"]) for a in body["output"]["annotations"]}
    assert notes == {("recipes/sea-ice/recipe.sh", 3), ("recipes/sea-ice/meta.yml", 7)}
    status = status_body(report)
    assert status["description"] == "Workflow failed: exit code 2 in step `run-cmd-0`"
    assert status["target_url"] == "https://hooks.example.org/runs/1"
    assert failure_problems(failure, "") == ()


def test_a_long_log_stays_within_githubs_text_limit() -> None:
    steps = tuple(StepFailure(f"s{i}", "n", "", ("é" * 999,) * 40) for i in range(5))
    report = commit_report(_run(Failure("x", "y", "z", steps)), ui_base=None, namespace="q")
    [body] = check_run_requests(report, now=datetime.now(UTC), create=True)
    assert len(body["output"]["text"].encode()) <= 65535


def test_runs_show_prints_the_failure_without_terminal_controls() -> None:
    step = StepFailure("cmd-0", "n", "main: OOMKilled (exit code 137)", ("\x1b[31mKilled",))
    shown = failure_lines(Failure("out of memory (OOMKilled)", "why", "try", (step,)).to_json())
    assert shown[0] == "failure: out of memory (OOMKilled): why"
    assert shown[-2:] == ["step cmd-0: main: OOMKilled (exit code 137)", "  | ?[31mKilled"]
    assert failure_lines(None) == []
