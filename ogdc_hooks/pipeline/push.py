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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ogdc_hooks.checkout import GitError, GitToken, changed_paths, checkout, run_git
from ogdc_hooks.db.tables import Delivery
from ogdc_hooks.forges.base import Event, Forge, Push, RepoRef
from ogdc_hooks.jobs.errors import PermanentError, TransientError
from ogdc_hooks.jobs.kinds import delivery_of, run_id_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import runs
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.prepare import prepare, record
from ogdc_hooks.pipeline.runs import NewRun, RunRecord
from ogdc_hooks.pipeline.sweep import SWEPT, Head, record_head, swept_push
from ogdc_hooks.recipes.load import find_recipe_dirs, recipe_dir_of
from ogdc_hooks.runstate import RunState
from ogdc_hooks.webhooks.events import ZERO_SHA

log = logging.getLogger(__name__)


def on_default_branch(push: Push) -> bool:
    return push.branch == push.default_branch


def head_of(push: Push) -> Head:
    """What the branch-head sweep compares with later."""
    return Head(
        push.repo,
        push.clone_url,
        push.default_branch,
        push.after if on_default_branch(push) else None,
    )


def diff_base(push: Push) -> str | None:
    """What to compare the pushed commit with: a sha, `"default"` (the default branch), or None.

    A new branch, or a force push to a branch other than the default, is compared
    with the default branch; a brand-new default branch (first push) has every
    recipe changed (None).
    """
    if push.before != ZERO_SHA and not (push.forced and not on_default_branch(push)):
        return push.before
    if not on_default_branch(push):
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


def unknown_pusher_message(forge: Forge | None, login: str | None, swept: bool = False) -> str:
    """Who pushed, that they are not a user, and the exact command that adds them."""
    label = forge.label if forge else "the forge"
    command = forge.add_user_hint(login) if forge else "ogdc-hooks create-user NAME PASSWORD"
    if swept:
        author = f"@{login}" if login else f"no {label} account"
        return (
            "No push webhook for this commit reached ogdc-hooks; the branch-head sweep found "
            f"it. {label} links its author to {author}, which is not a known, active "
            "ogdc-hooks user, so nothing was submitted. Push again as a known user (an admin "
            f"adds one with `{command}`)."
        )
    who = f"@{login}" if login else "The pusher"
    return (
        f"{who} pushed this commit, but is not a known, active ogdc-hooks user, so nothing "
        f"was submitted. An ogdc-hooks admin must add them, e.g. `{command}`, "
        "then push again or re-run this check."
    )


def _git_failure(err: GitError) -> Exception:
    return TransientError(str(err)) if err.transient else PermanentError(str(err))


@contextlib.asynccontextmanager
async def checked_out(
    pipeline: Pipeline,
    clone_url: str,
    sha: str,
    token: GitToken | None,
    extra: tuple[str, ...] = (),
) -> AsyncIterator[Path]:
    """The commit's work tree in a temporary directory, made and removed on the git pool."""
    manager = checkout(
        clone_url,
        sha,
        pipeline.workdir,
        token=token.secret if token else None,
        token_user=token.user if token else None,
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


@dataclass(frozen=True)
class StoredDelivery:
    """A delivery as stored at intake, and the forge instance that sent it."""

    forge_host: str
    id: str
    event: str
    payload: dict[str, Any]

    def event_of(self, forge: Forge | None) -> Event | None:
        """The neutral event: a swept push as the sweep wrote it, else as its forge reads it."""
        if self.payload.get(SWEPT):
            return swept_push(self.forge_host, self.payload, self.id)
        return forge.event_of(self.id, self.event, self.payload) if forge else None


async def stored_delivery(pipeline: Pipeline, forge: str, delivery_id: str) -> StoredDelivery:
    async with pipeline.database.sessions() as session:
        row = (
            await session.execute(
                select(Delivery.event, Delivery.payload).where(
                    Delivery.forge == forge, Delivery.id == delivery_id
                )
            )
        ).first()
    if row is None:
        raise PermanentError(f"delivery {delivery_id} from {forge} is not stored")
    return StoredDelivery(forge, delivery_id, row.event, row.payload)


async def delivered(pipeline: Pipeline, job: Job) -> tuple[Forge | None, Event | None]:
    """The forge and neutral event of a delivery job (`{"delivery": id, "forge": host}`)."""
    stored = await stored_delivery(pipeline, *delivery_of(job))
    forge = pipeline.forges.get(stored.forge_host)
    return forge, stored.event_of(forge)


async def pushed(pipeline: Pipeline, job: Job) -> tuple[Forge | None, Push]:
    """The push a `push` job is for; `PermanentError` when the delivery is not a push."""
    forge, event = await delivered(pipeline, job)
    if not isinstance(event, Push):
        raise PermanentError(f"delivery {job.payload['delivery']} is not a push")
    return forge, event


async def _base_sha(pipeline: Pipeline, push: Push, token: GitToken | None) -> str | None:
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
    forge, push = await pushed(pipeline, job)
    user = await pipeline.users.by_github_login(push.pusher) if push.pusher else None
    engine = pipeline.database.engine
    async with engine.begin() as connection:
        await record_head(connection, head_of(push))
    if user is None or not user.is_active:
        async with engine.begin() as connection:
            message = unknown_pusher_message(forge, push.pusher, push.swept)
            rejected = push_run(push, "", RunState.REJECTED, None, message)
            await runs.create_run(connection, rejected)
        log.info("push to %s by unknown user %s rejected", push.repo.name, push.pusher)
        return
    token = await pipeline.git_token(push.repo)
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
        push.repo.name,
        push.after[:12],
        len(recipes),
        len(recipes) - len(known),
        f"; already run at this commit, so not again: {', '.join(known)}" if known else "",
    )


async def _refuse_many(pipeline: Pipeline, push: Push, user: str, count: int) -> None:
    """One failing check for the whole push instead of a run per recipe."""
    limit = pipeline.limits.max_recipes_per_push
    message = (
        f"This push changes {count} recipes, more than the limit of {limit} a push "
        "(OGDC_MAX_RECIPES_PER_PUSH), so none was run. Push the changes in smaller parts, "
        "or submit recipes one by one (`ogdc-hooks submit`)."
    )
    async with pipeline.database.engine.begin() as connection:
        await runs.create_run(connection, push_run(push, "", RunState.INVALID, user, message))
    log.info("push %s@%s: %d recipes, over the limit", push.repo.name, push.after[:12], count)


def push_run(
    push: Push, recipe: str, state: RunState, requested_by: str | None, message: str | None
) -> NewRun:
    return NewRun(
        forge=push.repo.forge,
        repository=push.repo.name,
        clone_url=push.clone_url,
        commit_sha=push.after,
        recipe=recipe,
        trigger="push",
        ref=f"refs/heads/{push.branch}",
        requested_by=requested_by,
        overwrite=True,  # pushing a changed recipe asks for its output to be made anew
        installation_id=push.repo.hint,
        delivery_id=push.delivery_id,
        state=state,
        message=message,
    )


async def _run_for(pipeline: Pipeline, new: NewRun) -> RunRecord:
    """Create the run, or find the one a previous attempt of this job created."""
    async with pipeline.database.engine.begin() as connection:
        run = await runs.create_run(connection, new)
        if run is None:
            run = await runs.find_run(connection, new)
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
    token = await pipeline.git_token(repo_of(run))
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


def repo_of(run: RunRecord) -> RepoRef:
    """The run's repository on its forge, with the hint the forge gave."""
    return RepoRef(run.forge, run.repository, run.installation_id)
