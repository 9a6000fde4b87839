"""Handling a push: who pushed, what changed, and a prepared run for every changed recipe.

The push job fetches the pushed commit once without its files, diffs it in git on
trees (payload file lists are truncated for large pushes), checks out the changed
recipes only and prepares each. Re-running
the job after a crash finds the runs it already created (their identity is
unique) and prepares only what is left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from ogdc_hooks.auth.unknown_pusher import unknown_pusher_message
from ogdc_hooks.checkout import GitError, GitToken, Trees
from ogdc_hooks.forges.base import Forge, Push
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.clones import fetched, git_failure, in_git
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.deliveries import pushed
from ogdc_hooks.pipeline.prepare import dry_run_reason, prepare_and_record
from ogdc_hooks.pipeline.requesters import known_user
from ogdc_hooks.pipeline.store import NewRun, RunRecord
from ogdc_hooks.pipeline.supersede import cancel_superseded
from ogdc_hooks.pipeline.sweep import Head, record_head
from ogdc_hooks.recipes.load import find_recipe_dirs, recipe_dir_of
from ogdc_hooks.runstate import RunState
from ogdc_hooks.webhooks.events import ZERO_SHA

log = logging.getLogger(__name__)

# Recipes prepared at once: enough to keep the recipe workers busy, and no more rendered
# workflows than this in memory, however many recipes the push changed.
PREPARING = 4


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


def unknown_pusher(forge: Forge | None, host: str, login: str | None, swept: bool = False) -> str:
    """Who pushed, on which forge, that they are not a user, and the command that adds them."""
    label = forge.label if forge else host
    return unknown_pusher_message(label, host, login, swept=swept)


def changed_recipes(trees: Trees, base: str | None) -> list[str]:
    """Recipe directories the commit changed that still exist in it, checked out (and
    nothing else); blocking: git.

    Only the trees are compared, and only the changed recipes' files are fetched.
    Without a base, or when the base is gone from the server (force-pushed away
    and collected), every recipe of the commit counts as changed and the whole
    commit is checked out: running one recipe too many is better than missing one.
    """
    if base is not None:
        try:
            paths = trees.changed_paths(base)
        except GitError:
            log.info("base %s is not available; treating every recipe as changed", base[:12])
        else:
            return _existing(trees, {recipe_dir_of(path) for path in paths})
    trees.check_out(None)
    return find_recipe_dirs(trees.work)


def _existing(trees: Trees, dirs: set[str | None]) -> list[str]:
    """The recipe directories that are in the commit (a directory, or a symlink for loading
    to judge)."""
    wanted = sorted(d for d in dirs if d is not None)
    present = trees.entries("recipes") if wanted else {}
    return [d for d in wanted if present.get(d) in (_TREE, _SYMLINK)]


_TREE, _SYMLINK = "040000", "120000"


async def _base_sha(pipeline: Pipeline, push: Push, token: GitToken | None) -> str | None:
    base = diff_base(push)
    if base != "default":
        return base
    try:
        return await pipeline.resolve_ref(
            push.clone_url, f"refs/heads/{push.default_branch}", token
        )
    except GitError as err:
        raise git_failure(err) from None


async def handle_push(pipeline: Pipeline, job: Job) -> None:
    forge, push = await pushed(pipeline, job)
    user = await known_user(pipeline, push.repo.forge, push.pusher)
    engine = pipeline.database.engine
    async with engine.begin() as connection:
        await record_head(connection, head_of(push))
    if user is None:
        async with engine.begin() as connection:
            message = unknown_pusher(forge, push.repo.forge, push.pusher, push.swept)
            rejected = push_run(push, "", RunState.REJECTED, None, message)
            await store.create_run(connection, rejected)
        log.info("push to %s by unknown user %s rejected", push.repo.name, push.pusher)
        return
    token = await pipeline.git_token(push.repo)
    base = await _base_sha(pipeline, push, token)
    extra = (base,) if base else ()
    async with fetched(pipeline, push.clone_url, push.after, token, extra) as trees:
        recipes = await in_git(changed_recipes, trees, base)
        if len(recipes) > pipeline.limits.max_recipes_per_push:
            await _refuse_many(pipeline, push, user.name, len(recipes))
            return
        await in_git(trees.check_out, recipes)
        dry_reason = dry_run_reason(pipeline, push.branch, push.default_branch)
        news = [push_run(push, recipe, RunState.QUEUED, user.name, None) for recipe in recipes]
        if dry_reason is not None:  # its preview shows what the push changes in the workflow
            news = [dataclasses.replace(new, base_sha=base) for new in news]
        runs = await _runs_for(pipeline, news)
        known = [f"{run.recipe} ({run.state})" for run, unprepared in runs if not unprepared]
        todo = [run for run, unprepared in runs if unprepared]
        for start in range(0, len(todo), PREPARING):
            await _prepare_together(pipeline, trees, todo[start : start + PREPARING], dry_reason)
    cancelled = await cancel_superseded(pipeline, forge, push, recipes)
    log.info(
        "push %s@%s: %d recipe(s) changed, %d new run(s)%s%s",
        push.repo.name,
        push.after[:12],
        len(recipes),
        len(recipes) - len(known),
        f"; already run at this commit, so not again: {', '.join(known)}" if known else "",
        f"; {cancelled} older run(s) superseded and cancelled" if cancelled else "",
    )


async def _prepare_together(
    pipeline: Pipeline, trees: Trees, runs: list[RunRecord], dry_reason: str | None
) -> None:
    """Prepare a few runs at once; the first failure stops the others and is raised as is."""
    try:
        async with asyncio.TaskGroup() as group:
            for run in runs:
                group.create_task(prepare_and_record(pipeline, trees, run, dry_reason))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def _refuse_many(pipeline: Pipeline, push: Push, user: str, count: int) -> None:
    """One failing check for the whole push instead of a run per recipe."""
    limit = pipeline.limits.max_recipes_per_push
    message = (
        f"This push changes {count} recipes, more than the limit of {limit} a push "
        "(OGDC_MAX_RECIPES_PER_PUSH), so none was run. Push the changes in smaller parts, "
        "or submit recipes one by one (`ogdc-hooks submit`)."
    )
    async with pipeline.database.engine.begin() as connection:
        await store.create_run(connection, push_run(push, "", RunState.INVALID, user, message))
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


async def _runs_for(pipeline: Pipeline, news: list[NewRun]) -> list[tuple[RunRecord, bool]]:
    """Create every run of the push in one transaction, or find those a previous attempt of
    this job created, each with whether it still needs preparing. All at once, so that each
    run's report sees how many the push has (`summary.py`); workflows stored by a previous
    attempt are not kept."""
    found = []
    async with pipeline.database.engine.begin() as connection:
        for new in news:
            run = await store.create_run(connection, new) or await store.find_run(connection, new)
            assert run is not None
            unprepared = run.state is RunState.QUEUED and run.workflow is None
            found.append((dataclasses.replace(run, workflow=None), unprepared))
    return found
