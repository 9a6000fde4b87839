"""Turning one recipe of a checked-out commit into a stored, ready-to-submit workflow.

Validation, DataONE resolution and rendering happen here, once per run. The
outcome is stored on the run (workflow, problems, state) so that submitting
and reporting never need the checkout again.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ogdc_hooks.checkout import Trees
from ogdc_hooks.jobs.kinds import enqueue_submit, run_id_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.clones import fetched, in_git
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.lint import LINTED, LOCAL_ONLY, lint_problem
from ogdc_hooks.pipeline.preview import recipe_facts
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.recipes.dataone import DataOneError, resolve_inputs
from ogdc_hooks.recipes.load import load_recipe
from ogdc_hooks.recipes.problems import Problem, RecipeInvalid
from ogdc_hooks.recipes.render import RenderError, RunIdentity, render_workflow
from ogdc_hooks.runstate import RunState


@dataclasses.dataclass(frozen=True)
class Prepared:
    state: RunState  # QUEUED (ready to submit), DRY_RUN, INVALID or ERROR
    message: str | None = None
    workflow: dict[str, object] | None = None
    problems: tuple[Problem, ...] = ()
    facts: dict[str, Any] | None = None  # for the preview (`preview.recipe_facts`)
    base_workflow: dict[str, object] | None = None  # the base's render, for the preview's diff


def _identity(run: RunRecord) -> RunIdentity:
    return RunIdentity(
        run_id=run.id.hex,
        repository=run.repository,
        commit=run.commit_sha,
        recipe_path=run.recipe,
        overwrite=run.overwrite,
        requested_by=run.requested_by,
    )


def problems_message(problems: tuple[Problem, ...]) -> str:
    """The run's message for an invalid recipe: how many errors, and the first 20."""
    errors = [p for p in problems if p.severity == "error"]
    shown = "\n".join(f"- {p}" for p in errors[:20])
    more = f"\n- ... and {len(errors) - 20} more" if len(errors) > 20 else ""
    return f"{len(errors)} problem(s) in the recipe:\n{shown}{more}"


async def prepare(
    pipeline: Pipeline, repo_dir: Path, run: RunRecord, dry_reason: str | None
) -> Prepared:
    """Validate, resolve and render one recipe, and lint a dry run's workflow with Argo.

    Never raises for a problem of the recipe; an unreachable Argo Server is transient."""
    rendered = await render(pipeline, repo_dir, run)
    if rendered.state is not RunState.QUEUED or dry_reason is None:
        return rendered  # the submit job lints a workflow right before creating it
    return await linted_dry_run(pipeline, run.recipe, rendered, dry_reason)


async def render(pipeline: Pipeline, repo_dir: Path, run: RunRecord) -> Prepared:
    """Validate, resolve and render one recipe; never raises for a problem of the recipe."""
    try:
        recipe = await pipeline.recipe_workers.run(
            load_recipe, repo_dir, run.recipe, pipeline.load_policy
        )
    except RecipeInvalid as err:
        return Prepared(RunState.INVALID, problems_message(err.problems), problems=err.problems)
    try:
        inputs = await resolve_inputs(recipe, pipeline.settings.dataone_node_url, pipeline.session)
    except DataOneError as err:
        return Prepared(RunState.ERROR, str(err), problems=recipe.warnings)
    try:
        workflow = await pipeline.recipe_workers.run(
            render_workflow, recipe, inputs, pipeline.render_settings, _identity(run)
        )
    except RenderError as err:
        return Prepared(RunState.INVALID, str(err), problems=recipe.warnings)
    facts = recipe_facts(recipe, inputs)
    return Prepared(RunState.QUEUED, None, workflow, recipe.warnings, facts)


async def linted_dry_run(
    pipeline: Pipeline, recipe: str, rendered: Prepared, dry_reason: str
) -> Prepared:
    """A rendered dry run, as the Argo Server's lint judges it (when one is configured)."""
    assert rendered.workflow is not None
    if pipeline.workflows is None:
        message = f"{dry_reason}\n\n{LOCAL_ONLY}"
        return dataclasses.replace(rendered, state=RunState.DRY_RUN, message=message)
    problem = await lint_problem(pipeline.workflows, recipe, rendered.workflow)
    if problem is not None:
        problems = (*rendered.problems, problem)
        return dataclasses.replace(
            rendered, state=RunState.INVALID, message=problems_message(problems), problems=problems
        )
    message = f"{dry_reason}\n\n{LINTED}"
    return dataclasses.replace(rendered, state=RunState.DRY_RUN, message=message)


async def record(connection: AsyncConnection, run: RunRecord, prepared: Prepared) -> None:
    """Store the outcome; a ready run stays queued and gets its submit job at once."""
    fields = {
        "workflow": prepared.workflow,
        "problems": [dataclasses.asdict(p) for p in prepared.problems] or None,
        "dry_run": prepared.state is RunState.DRY_RUN,
        "recipe_facts": prepared.facts,
        "base_workflow": prepared.base_workflow,
    }
    if prepared.state is not RunState.QUEUED:
        await store.change_state(
            connection,
            run.id,
            prepared.state,
            prepared.message,
            only_from=[RunState.QUEUED],
            **fields,
        )
        return
    await store.update_fields(connection, run.id, **fields)
    await enqueue_submit(connection, run.id)


def dry_run_reason(
    pipeline: Pipeline, branch: str | None, default_branch: str | None
) -> str | None:
    """Why a run is only rendered, or None when it is submitted."""
    if pipeline.workflows is None:
        return (
            "Dry run: no Argo Server is configured (ARGO_WORKFLOWS_SERVICE_URL), "
            "so the workflow was rendered and stored, not submitted."
        )
    if branch is not None and default_branch is not None and branch != default_branch:
        return (
            f"Dry run: `{branch}` is not the default branch `{default_branch}`; "
            "the recipe was validated and rendered, not submitted."
        )
    return None


async def _base_render(
    pipeline: Pipeline, trees: Trees, run: RunRecord
) -> dict[str, object] | None:
    """The recipe rendered as it is at `run.base_sha` (fetched with the commit), with the
    run's own identity so the diff shows only what the change changes; None when new or
    invalid there. Not linted: it is not run."""
    assert run.base_sha is not None
    # Inside the checkout's own directory, so a killed process's leftovers go with it.
    with tempfile.TemporaryDirectory(dir=trees.work / ".git", prefix="ogdc-base-") as scratch:
        if not await in_git(trees.export, run.base_sha, run.recipe, Path(scratch)):
            return None
        return (await render(pipeline, Path(scratch), run)).workflow


async def prepare_and_record(
    pipeline: Pipeline, trees: Trees, run: RunRecord, dry_reason: str | None
) -> None:
    """Prepare a run from its checked-out commit and store the outcome (with the base's
    render, for a run compared with one)."""
    prepared = await prepare(pipeline, trees.work, run, dry_reason)
    if run.base_sha and prepared.workflow is not None:
        base = await _base_render(pipeline, trees, run)
        prepared = dataclasses.replace(prepared, base_workflow=base)
    async with pipeline.database.engine.begin() as connection:
        await record(connection, run, prepared)


async def handle_prepare(pipeline: Pipeline, job: Job) -> None:
    """Prepare one run on its own (a re-run or an API submission): fetch its recipe (and
    the commit it is compared with), validate, render."""
    run = await store.get_run(pipeline.database.engine, run_id_of(job))
    if run is None or run.state is not RunState.QUEUED or run.workflow is not None:
        return
    token = await pipeline.git_token(store.repo_of(run))
    extra = (run.base_sha,) if run.base_sha else ()
    async with fetched(pipeline, run.clone_url, run.commit_sha, token, extra) as trees:
        await in_git(trees.check_out, [run.recipe])
        if not (trees.work / run.recipe).is_dir():
            async with pipeline.database.engine.begin() as connection:
                await store.change_state(
                    connection,
                    run.id,
                    RunState.INVALID,
                    f"`{run.recipe}` is not a directory at commit {run.commit_sha[:12]}",
                    only_from=[RunState.QUEUED],
                )
            return
        await prepare_and_record(pipeline, trees, run, _dry_reason_for(pipeline, run))


def _dry_reason_for(pipeline: Pipeline, run: RunRecord) -> str | None:
    reason = dry_run_reason(pipeline, None, None)
    if run.dry_run:
        return run.message or reason or "Dry run requested."
    return reason
