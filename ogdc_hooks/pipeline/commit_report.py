"""What a run looks like on the commit: the pure translation of a run into a `CommitReport`."""

from __future__ import annotations

from urllib.parse import quote

from ogdc_hooks.auth.unknown_pusher import headline_of
from ogdc_hooks.failure import Failure
from ogdc_hooks.forges.base import CommitReport, ReportAction, RunState
from ogdc_hooks.pipeline.failure_report import (
    failure_problems,
    failure_text,
    failure_title,
    output_lines,
)
from ogdc_hooks.pipeline.preview import preview
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.recipes.problems import Problem

PUSH_CHECK = "ogdc"  # the push-wide check, e.g. for an unknown pusher


def check_name(recipe: str) -> str:
    """`ogdc/<recipe's path in its repository>`, e.g. `ogdc/recipes/seal-tags`; the push-wide
    verdict has no recipe. The whole path, not its last segment: `decoy/deploy` must not
    pass for `recipes/deploy`."""
    return f"{PUSH_CHECK}/{recipe}" if recipe else PUSH_CHECK


def workflow_url(ui_base: str | None, namespace: str, workflow_name: str | None) -> str | None:
    if not ui_base or not workflow_name:
        return None
    return f"{ui_base}/workflows/{quote(namespace)}/{quote(workflow_name)}"


_TITLES = {
    RunState.QUEUED: "Queued",
    RunState.SUBMITTED: "Submitted to Argo",
    RunState.RUNNING: "Running in Argo",
    RunState.SUCCEEDED: "Workflow succeeded",
    RunState.FAILED: "Workflow failed",
    RunState.INVALID: "Recipe is invalid",
    RunState.REJECTED: "Push not accepted",
    RunState.ERROR: "Could not run the recipe",
    RunState.TIMED_OUT: "Timed out: the workflow was stopped",
    RunState.DRY_RUN: "Dry run: rendered, not submitted",
    RunState.CANCELLED: "Cancelled: the workflow was stopped",
}


def _summary(run: RunRecord, url: str | None, pvc: str | None) -> str:
    subject = f"Recipe `{run.recipe}`" if run.recipe else "This push"
    lines = [f"{subject} at `{run.commit_sha[:12]}` (run `{run.id}`, attempt {run.attempt})."]
    if run.workflow_name:
        link = f"[{run.workflow_name}]({url})" if url else f"`{run.workflow_name}`"
        lines.append(f"Argo workflow: {link}.")
    if run.message:
        lines.append("")
        lines.append(run.message)
    if run.state is RunState.SUCCEEDED:
        lines += output_lines(run, pvc)
    if run.state is RunState.DRY_RUN and run.workflow:
        lines.append("")
        lines.append(
            preview(
                run.workflow,
                run.recipe_facts,
                base=run.base_workflow,
                compared=run.base_sha is not None,
                overwrite=run.overwrite,
                run_id=str(run.id),
            )
        )
    return "\n".join(lines)


def _problems(run: RunRecord) -> tuple[Problem, ...]:
    return tuple(Problem(**problem) for problem in run.problems or ())


def report_actions(run: RunRecord) -> tuple[ReportAction, ...]:
    """The buttons a run's report offers: Cancel while its workflow runs, Retry once it
    failed in the engine."""
    if run.workflow_name is None:
        return ()
    if run.state in (RunState.SUBMITTED, RunState.RUNNING):
        return (ReportAction.CANCEL,)
    if run.state is RunState.FAILED:
        return (ReportAction.RETRY,)
    return ()


def commit_report(
    run: RunRecord,
    *,
    ui_base: str | None,
    namespace: str,
    run_url: str | None = None,
    pvc: str | None = None,
) -> CommitReport:
    """The report of a run's current state; the forge module decides how to show it.

    `run_url` is the run's page on this service (linked from failed statuses), `pvc` the
    workflow volume a `pvc` output is copied to."""
    url = workflow_url(ui_base, namespace, run.workflow_name)
    title = _TITLES[run.state]
    if not run.recipe and run.state is RunState.SUCCEEDED:
        title = "Push accepted"  # a refused push, handled again once its pusher was added
    if run.state is RunState.REJECTED and run.message:
        title = headline_of(run.message)  # who pushed and what an admin must do
    problems = _problems(run)
    if run.state is RunState.INVALID and problems:
        errors = sum(1 for p in problems if p.severity == "error")
        title = f"Recipe is invalid: {errors} problem{'s' if errors != 1 else ''}"
    failure = Failure.from_json(run.failure) if run.state.finished else None
    text = None
    if failure is not None and run.state is RunState.FAILED:
        title = failure_title(failure)
    if failure is not None:
        text = failure_text(failure)
        problems = (*problems, *failure_problems(failure, run.recipe))
    return CommitReport(
        repository=run.repository,
        commit_sha=run.commit_sha,
        name=check_name(run.recipe),
        state=run.state,
        title=title,
        summary=_summary(run, url, pvc),
        details_url=url,
        problems=problems,
        external_id=str(run.id),
        actions=report_actions(run),
        text=text,
        run_url=run_url if failure is not None else None,
    )
