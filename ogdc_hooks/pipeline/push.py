"""Handling a push: who pushed, what changed, and a prepared run for every changed recipe.

The push job clones the pushed commit once, diffs it in git (payload file lists
are truncated for large pushes) and prepares each changed recipe. Re-running
the job after a crash finds the runs it already created (their identity is
unique) and prepares only what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ogdc_hooks.auth.unknown_pusher import unknown_pusher_message
from ogdc_hooks.checkout import GitError, changed_paths, checkout, run_git
from ogdc_hooks.db.tables import Delivery
from ogdc_hooks.forges.report import RunState
from ogdc_hooks.jobs.errors import PermanentError, TransientError
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import runs
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.prepare import prepare, record
from ogdc_hooks.pipeline.runs import NewRun, RunRecord
from ogdc_hooks.pipeline.sources import on_forge, without_credentials
from ogdc_hooks.pipeline.sweep import SWEPT, Head, record_head
from ogdc_hooks.recipes.load import find_recipe_dirs, recipe_dir_of
from ogdc_hooks.webhooks.events import ZERO_SHA

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushFacts:
    """The parts of a push payload the pipeline acts on."""

    repository: str
    clone_url: str
    default_branch: str
    branch: str
    before: str
    after: str
    forced: bool
    pusher: str | None
    installation_id: int | None
    delivery_id: str
    swept: bool = False  # found by the branch-head sweep, not delivered by a webhook

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], delivery_id: str) -> PushFacts:
        repository = payload["repository"]
        installation = payload.get("installation") or {}
        sender = payload.get("sender") or {}
        return cls(
            repository=repository["full_name"],
            clone_url=without_credentials(repository["clone_url"]),
            default_branch=repository.get("default_branch") or "main",
            branch=payload["ref"].removeprefix("refs/heads/"),
            before=payload.get("before") or ZERO_SHA,
            after=payload["after"],
            forced=bool(payload.get("forced")),
            pusher=sender.get("login"),
            installation_id=installation.get("id"),
            delivery_id=delivery_id,
            swept=bool(payload.get(SWEPT)),
        )

    @property
    def on_default_branch(self) -> bool:
        return self.branch == self.default_branch

    @property
    def head(self) -> Head:
        """What the branch-head sweep compares with later."""
        return Head(
            self.repository,
            self.clone_url,
            self.default_branch,
            self.after if self.on_default_branch else None,
            self.installation_id,
        )


def diff_base(push: PushFacts) -> str | None:
    """What to compare the pushed commit with: a sha, `"default"` (the default branch), or None.

    A new branch, or a force push to a branch other than the default, is compared
    with the default branch; a brand-new default branch (first push) has every
    recipe changed (None).
    """
    if push.before != ZERO_SHA and not (push.forced and not push.on_default_branch):
        return push.before
    if not push.on_default_branch:
        return "default"
    return None


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


def pushers_forge(pipeline: Pipeline) -> tuple[str, str]:
    """The label and host of the forge pushes come from (today: the configured GitHub)."""
    return "GitHub", pipeline.settings.github_host


def _git_failure(err: GitError) -> Exception:
    return TransientError(str(err)) if err.transient else PermanentError(str(err))


@contextlib.asynccontextmanager
async def checked_out(
    pipeline: Pipeline, clone_url: str, sha: str, token: str | None, extra: tuple[str, ...] = ()
) -> AsyncIterator[Path]:
    """The commit's work tree in a temporary directory, made and removed on the git pool."""
    manager = checkout(
        clone_url,
        sha,
        pipeline.workdir,
        token=token,
        timeout_s=pipeline.limits.clone_timeout_s,
        max_bytes=pipeline.limits.clone_max_bytes,
        max_files=pipeline.limits.clone_max_files,
        max_memory=pipeline.limits.git_max_memory,
        extra_shas=extra,
    )
    try:
        path = await run_git(manager.__enter__)
    except GitError as err:
        raise _git_failure(err) from None
    try:
        yield path
    finally:
        await run_git(manager.__exit__, None, None, None)


def changed_recipes(repo_dir: Path, base: str | None, head: str) -> list[str]:
    """Recipe directories the commit changed that still exist in it (blocking: git).

    Without a base, or when the base is gone from the server (force-pushed away
    and collected), every recipe of the commit counts as changed: running one
    recipe too many is better than missing one.
    """
    if base is None:
        return find_recipe_dirs(repo_dir)
    try:
        paths = changed_paths(repo_dir, base, head)
    except GitError:
        log.info("base %s is not available; treating every recipe as changed", base[:12])
        return find_recipe_dirs(repo_dir)
    dirs = {recipe_dir_of(path) for path in paths}
    return sorted(d for d in dirs if d is not None and (repo_dir / d).is_dir())


async def delivery_payload(pipeline: Pipeline, delivery_id: str) -> dict[str, Any]:
    async with pipeline.database.sessions() as session:
        payload: dict[str, Any] | None = await session.scalar(
            select(Delivery.payload).where(Delivery.id == delivery_id)
        )
    if payload is None:
        raise PermanentError(f"delivery {delivery_id} is not stored")
    return payload


async def _base_sha(pipeline: Pipeline, push: PushFacts, token: str | None) -> str | None:
    base = diff_base(push)
    if base != "default":
        return base
    try:
        return await pipeline.resolve_ref(
            push.clone_url, f"refs/heads/{push.default_branch}", token
        )
    except GitError as err:
        raise _git_failure(err) from None


async def handle_push(pipeline: Pipeline, job: Job) -> None:
    delivery = job.payload["delivery"]
    push = PushFacts.from_payload(await delivery_payload(pipeline, delivery), delivery)
    user = await pipeline.users.by_github_login(push.pusher) if push.pusher else None
    engine = pipeline.database.engine
    async with engine.begin() as connection:
        await record_head(connection, push.head)
    if user is None or not user.is_active:
        async with engine.begin() as connection:
            message = unknown_pusher_message(
                *pushers_forge(pipeline), push.pusher, swept=push.swept
            )
            rejected = push_run(push, "", RunState.REJECTED, None, message)
            await runs.create_run(connection, rejected)
        log.info("push to %s by unknown user %s rejected", push.repository, push.pusher)
        return
    token = await _clone_token(pipeline, push.repository, push.installation_id)
    base = await _base_sha(pipeline, push, token)
    extra = (base,) if base else ()
    async with checked_out(pipeline, push.clone_url, push.after, token, extra) as repo_dir:
        recipes = await asyncio.to_thread(changed_recipes, repo_dir, base, push.after)
        if len(recipes) > pipeline.limits.max_recipes_per_push:
            await _refuse_many(pipeline, push, user.name, len(recipes))
            return
        dry_reason = dry_run_reason(pipeline, push.branch, push.default_branch)
        known = []
        for recipe in recipes:
            run = await _run_for(pipeline, push_run(push, recipe, RunState.QUEUED, user.name, None))
            if run.state is RunState.QUEUED and run.workflow is None:
                await _prepare_and_record(pipeline, repo_dir, run, dry_reason)
            else:
                known.append(f"{recipe} ({run.state})")
    log.info(
        "push %s@%s: %d recipe(s) changed, %d new run(s)%s",
        push.repository,
        push.after[:12],
        len(recipes),
        len(recipes) - len(known),
        f"; already run at this commit, so not again: {', '.join(known)}" if known else "",
    )


async def _refuse_many(pipeline: Pipeline, push: PushFacts, user: str, count: int) -> None:
    """One failing check for the whole push instead of a run per recipe."""
    limit = pipeline.limits.max_recipes_per_push
    message = (
        f"This push changes {count} recipes, more than the limit of {limit} a push "
        "(OGDC_MAX_RECIPES_PER_PUSH), so none was run. Push the changes in smaller parts, "
        "or submit recipes one by one (`ogdc-hooks submit`)."
    )
    async with pipeline.database.engine.begin() as connection:
        await runs.create_run(connection, push_run(push, "", RunState.INVALID, user, message))
    log.info("push %s@%s: %d recipes, over the limit", push.repository, push.after[:12], count)


async def _clone_token(
    pipeline: Pipeline, repository: str, installation_id: int | None
) -> str | None:
    if pipeline.forge is None or not on_forge(repository):
        return None
    return await pipeline.forge.clone_token(repository, installation_id)


def push_run(
    push: PushFacts, recipe: str, state: RunState, requested_by: str | None, message: str | None
) -> NewRun:
    return NewRun(
        repository=push.repository,
        clone_url=push.clone_url,
        commit_sha=push.after,
        recipe=recipe,
        trigger="push",
        ref=f"refs/heads/{push.branch}",
        requested_by=requested_by,
        overwrite=True,  # pushing a changed recipe asks for its output to be made anew
        installation_id=push.installation_id,
        delivery_id=push.delivery_id,
        state=state,
        message=message,
    )


async def _run_for(pipeline: Pipeline, new: NewRun) -> RunRecord:
    """Create the run, or find the one a previous attempt of this job created."""
    async with pipeline.database.engine.begin() as connection:
        run = await runs.create_run(connection, new)
        if run is None:
            run = await runs.find_run(
                connection, new.repository, new.commit_sha, new.recipe, new.attempt
            )
    assert run is not None
    return run


async def _prepare_and_record(
    pipeline: Pipeline, repo_dir: Path, run: RunRecord, dry_reason: str | None
) -> None:
    prepared = await prepare(pipeline, repo_dir, run, dry_reason)
    async with pipeline.database.engine.begin() as connection:
        await record(connection, run, prepared)


async def handle_prepare(pipeline: Pipeline, job: Job) -> None:
    """Prepare one run on its own (a re-run or an API submission): clone, validate, render."""
    run = await runs.get_run(pipeline.database.engine, run_id_of(job))
    if run is None or run.state is not RunState.QUEUED or run.workflow is not None:
        return
    token = await _clone_token(pipeline, run.repository, run.installation_id)
    async with checked_out(pipeline, run.clone_url, run.commit_sha, token) as repo_dir:
        if not (repo_dir / run.recipe).is_dir():
            async with pipeline.database.engine.begin() as connection:
                await runs.change_state(
                    connection,
                    run.id,
                    RunState.INVALID,
                    f"`{run.recipe}` is not a directory at commit {run.commit_sha[:12]}",
                    only_from=[RunState.QUEUED],
                )
            return
        await _prepare_and_record(pipeline, repo_dir, run, _dry_reason_for(pipeline, run))


def _dry_reason_for(pipeline: Pipeline, run: RunRecord) -> str | None:
    reason = dry_run_reason(pipeline, None, None)
    if run.dry_run:
        return run.message or reason or "Dry run requested."
    return reason


def run_id_of(job: Job) -> uuid.UUID:
    return uuid.UUID(job.payload["run"])
