"""Pull requests and merge groups (the `pull_request` job): the recipes a change touches are
validated and rendered, never submitted, and each gets a report on the change's head commit
with a preview of what it would run (`preview.py`).

What changed is what git says between the merge base of the base branch's tip and the
head, not what the payload lists. The head is fetched from the base repository (GitHub keeps
every pull request's head, a fork's too, at `refs/pull/N/head` there) with the credential
that reads it; nothing of the change is executed: recipes are only loaded and rendered.
The newest delivery of a pull request wins: an older head, or any head after the pull
request closed, is not validated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert

from ogdc_hooks.db.tables import PullRequest as PullRequestRow
from ogdc_hooks.forges.base import MergeGroup, PullRequest, RepoRef
from ogdc_hooks.jobs.kinds import delivery_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.clones import fetched, in_git
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.deliveries import stored_delivery
from ogdc_hooks.pipeline.prepare import prepare_and_record
from ogdc_hooks.pipeline.push import changed_recipes
from ogdc_hooks.pipeline.store import NewRun, RunRecord
from ogdc_hooks.runstate import RunState

log = logging.getLogger(__name__)
_PULL_REQUEST_KEY = ("forge", "repository", "number")
PULL_REQUESTS = cast(Table, PullRequestRow.__table__)


@dataclass(frozen=True)
class Change:
    """A head commit to validate against a base branch's tip."""

    repo: RepoRef
    clone_url: str  # the base repository's: the head is fetched through it
    head_sha: str
    base_tip: str
    ref: str  # where the base repository keeps the head (refs/pull/N/head, a merge queue ref)
    trigger: str  # "pull_request" | "merge_group"
    number: int | None  # the pull request's
    delivery_id: str
    reason: str  # why it is not submitted, shown on each check


def change_of(event: PullRequest | MergeGroup) -> Change:
    """What to validate for a pull request or a merge group: they differ only in where the
    base repository keeps the head, the trigger, the number and the reason on each check."""
    if isinstance(event, PullRequest):
        ref, trigger, number = event.fetch_ref, "pull_request", event.number
        reason = (
            f"Pull request #{event.number}: validated and rendered, not submitted. A pull "
            "request runs nothing unless a known user asks for it with an `/ogdc run` comment."
        )
    else:
        ref, trigger, number = event.head_ref, "merge_group", None
        reason = "Merge queue: validated and rendered, not submitted (the merge's push runs it)."
    return Change(
        repo=event.repo,
        clone_url=event.clone_url,
        head_sha=event.head_sha,
        base_tip=event.base_sha,
        ref=ref,
        trigger=trigger,
        number=number,
        delivery_id=event.delivery_id,
        reason=reason,
    )


def _change_run(
    change: Change, recipe: str, base: str, state: RunState, message: str | None
) -> NewRun:
    return NewRun(
        forge=change.repo.forge,
        repository=change.repo.name,
        clone_url=change.clone_url,
        commit_sha=change.head_sha,
        recipe=recipe,
        trigger=change.trigger,
        ref=change.ref,
        dry_run=True,
        installation_id=change.repo.hint,
        delivery_id=change.delivery_id,
        state=state,
        message=message,
        base_sha=base,
        pull_request=change.number,
    )


async def _run_to_prepare(pipeline: Pipeline, new: NewRun) -> RunRecord | None:
    """A new run for the recipe, or the one an interrupted attempt of this job left unprepared;
    None when the same change was validated before (a delivery repeated at the same head)."""
    async with pipeline.database.engine.begin() as connection:
        found = await store.find_change_run(connection, new)
        if found is None:
            return await store.create_attempt(connection, new)
    return found if found.state is RunState.QUEUED and found.workflow is None else None


async def validate_change(pipeline: Pipeline, change: Change) -> None:
    """Validate and render every recipe the change touches; a report each, none when none."""
    token = await pipeline.git_token(change.repo)
    async with fetched(
        pipeline, change.clone_url, change.head_sha, token, meet=change.base_tip
    ) as trees:
        base = trees.merge_base or change.base_tip  # unrelated histories: compare with the tip
        recipes = await in_git(changed_recipes, trees, base)
        limit = pipeline.limits.max_recipes_per_push
        if len(recipes) > limit:
            message = (
                f"This change touches {len(recipes)} recipes, more than the limit of {limit} "
                "(OGDC_MAX_RECIPES_PER_PUSH), so none was validated. Split it into smaller ones."
            )
            async with pipeline.database.engine.begin() as connection:
                await store.create_run(
                    connection, _change_run(change, "", base, RunState.INVALID, message)
                )
            return
        await in_git(trees.check_out, recipes)
        for recipe in recipes:
            run = await _run_to_prepare(
                pipeline, _change_run(change, recipe, base, RunState.QUEUED, None)
            )
            if run is not None:
                await prepare_and_record(pipeline, trees, run, change.reason)
    log.info(
        "%s %s@%s: %d recipe(s) changed since %s",
        change.trigger,
        change.repo.name,
        change.head_sha[:12],
        len(recipes),
        base[:12],
    )


async def remember(pipeline: Pipeline, pr: PullRequest, received_at: datetime) -> bool:
    """Record the pull request's head and whether it is open, unless a newer change did (by
    the forge's time of the change, else the delivery's: a redelivery may come late);
    whether this delivery is the newest."""
    values = {
        "forge": pr.repo.forge,
        "repository": pr.repo.name,
        "number": pr.number,
        "head_sha": pr.head_sha,
        "base_ref": pr.base_ref,
        "clone_url": pr.clone_url,
        "fetch_ref": pr.fetch_ref,
        "author": (pr.author or "")[:40] or None,
        "installation_id": pr.repo.hint,
        "open": not pr.closed,
        "head_at": pr.at or received_at,
    }
    table = PULL_REQUESTS
    upsert = insert(table).values(values)
    updated = {key: upsert.excluded[key] for key in values if key not in _PULL_REQUEST_KEY}
    statement = upsert.on_conflict_do_update(
        index_elements=list(_PULL_REQUEST_KEY),
        set_=updated,
        where=table.c.head_at <= upsert.excluded.head_at,
    ).returning(table.c.number)
    async with pipeline.database.engine.begin() as connection:
        return (await connection.execute(statement)).first() is not None


async def _end_destroyed(pipeline: Pipeline, group: MergeGroup) -> None:
    """A destroyed merge group's checks that are still queued end as dry runs that say so."""
    async with pipeline.database.engine.begin() as connection:
        rows = await connection.execute(
            select(store.RUNS.c.id).where(
                store.RUNS.c.forge == group.repo.forge,
                store.RUNS.c.repository == group.repo.name,
                store.RUNS.c.commit_sha == group.head_sha,
                store.RUNS.c.trigger == "merge_group",
                store.RUNS.c.state == RunState.QUEUED.value,
            )
        )
        for run_id in rows.scalars().all():
            await store.change_state(
                connection,
                run_id,
                RunState.DRY_RUN,
                "The merge group was removed from the queue; its check ends here.",
                only_from=[RunState.QUEUED],
            )


async def handle_proposal(pipeline: Pipeline, job: Job) -> None:
    stored = await stored_delivery(pipeline, *delivery_of(job))
    event = stored.event_of(pipeline.forges.get(stored.forge_host))
    if isinstance(event, MergeGroup):
        if event.action == "destroyed":
            await _end_destroyed(pipeline, event)
        else:
            await validate_change(pipeline, change_of(event))
        return
    if not isinstance(event, PullRequest):
        log.info("delivery %s asks for no validation; ignored", stored.id)
        return
    assert stored.received_at is not None
    if not await remember(pipeline, event, stored.received_at):
        log.info(
            "pull request %s#%d: a newer delivery came first; this one is old",
            event.repo.name,
            event.number,
        )
        return
    if event.closed:
        log.info("pull request %s#%d closed: no longer followed", event.repo.name, event.number)
        return
    if event.from_fork:
        log.info(
            "pull request %s#%d from %s: its head is fetched through %s",
            event.repo.name,
            event.number,
            event.head_repo,
            event.fetch_ref,
        )
    await validate_change(pipeline, change_of(event))
