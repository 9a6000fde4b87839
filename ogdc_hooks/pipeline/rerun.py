"""Re-running when someone asks the forge to (GitHub: "Re-run" on a check run): a recipe at
its commit, or a push refused for an unknown pusher once an admin has added them.

A request counts only for a run of the repository (and commit) it came from, and only
for the newest attempt of its recipe there: a signed request replayed under new
delivery ids, or sent again for an attempt already re-run, starts nothing new.
"""

from __future__ import annotations

import logging

from ogdc_hooks.forges.base import Forge, Push, RerunRequested
from ogdc_hooks.jobs.kinds import JobKind, enqueue_delivery
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.actions import ActionRefused, names_the_run
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.deliveries import delivered, stored_delivery
from ogdc_hooks.pipeline.push import unknown_pusher
from ogdc_hooks.pipeline.requesters import known_user
from ogdc_hooks.pipeline.store import NewRun, RunRecord
from ogdc_hooks.runstate import RunState

log = logging.getLogger(__name__)


async def _superseded(pipeline: Pipeline, run: RunRecord) -> bool:
    """Whether a newer attempt of the run's recipe at its commit exists already."""
    async with pipeline.database.engine.connect() as connection:
        latest = await store.latest_attempt(
            connection, run.forge, run.repository, run.commit_sha, run.recipe
        )
    return latest > run.attempt


async def start_rerun(
    pipeline: Pipeline, original: RunRecord, trigger: str, requested_by: str
) -> RunRecord:
    """A new attempt of `original`'s recipe at the same commit, queued for preparing."""
    new = NewRun(
        forge=original.forge,
        repository=original.repository,
        clone_url=original.clone_url,
        commit_sha=original.commit_sha,
        recipe=original.recipe,
        trigger=trigger,
        ref=original.ref,
        requested_by=requested_by,
        overwrite=True,
        dry_run=original.dry_run,
        installation_id=original.installation_id,
        reports=original.reports,
        message=original.message if original.dry_run else None,
        base_sha=original.base_sha,
        pull_request=original.pull_request,
    )
    async with pipeline.database.engine.begin() as connection:
        return await store.create_next_attempt(connection, new)


def rerunnable(run: RunRecord) -> bool:
    """Whether the run is a recipe's and has ended, so that it can be run anew (the
    dashboard shows the button only then)."""
    return bool(run.recipe) and run.state.finished


async def request_rerun(pipeline: Pipeline, run: RunRecord, by: str) -> RunRecord:
    """Run the recipe anew at the run's commit on someone's request (the dashboard's and
    the API's Re-run, as the forge's): the new attempt, queued."""
    if not rerunnable(run):
        what = "has not ended: cancel it first" if run.recipe else "is not a recipe's run"
        raise ActionRefused(f"run {run.id} {what}, so it cannot be re-run")
    if await _superseded(pipeline, run):
        raise ActionRefused(
            f"run {run.id} is not the newest attempt of {run.recipe} at its commit; "
            "re-run the newest one"
        )
    new = await start_rerun(pipeline, run, "rerequest", by)
    log.info("run %s re-run as %s at %s's request", run.id, new.id, by)
    return new


async def handle_rerequest(pipeline: Pipeline, job: Job) -> None:
    forge, request = await delivered(pipeline, job)
    if not isinstance(request, RerunRequested):
        log.info("delivery %s asks for no re-run; ignored", job.payload["delivery"])
        return
    run_id = request.run_id
    original = await store.get_run(pipeline.database.engine, run_id) if run_id else None
    if original is None:
        log.info("re-run requested for a check that is not ours; ignored")
        return
    if not names_the_run(request, original):
        log.warning(
            "re-run of run %s requested from another repository or commit; ignored", original.id
        )
        return
    if original.recipe and await _superseded(pipeline, original):
        log.info("re-run of run %s was started before; nothing new started", original.id)
        return
    login = request.requester
    user = await known_user(pipeline, request.repo.forge, login)
    if user is None:
        async with pipeline.database.engine.begin() as connection:
            await store.change_state(
                connection,
                original.id,
                original.state,
                f"A re-run was asked for by @{login}, who is not a known, active ogdc-hooks user.",
            )
        return
    if original.recipe:
        await start_rerun(pipeline, original, "rerequest", user.name)
    elif original.state is RunState.REJECTED and original.delivery_id:
        await _retry_rejected_push(pipeline, forge, original, user.name)


async def _retry_rejected_push(
    pipeline: Pipeline, forge: Forge | None, rejected: RunRecord, by: str
) -> None:
    """Handle a refused push again, once an admin has added its pusher ("Re-run" on `ogdc`).

    The push job checks the pusher again: still unknown, it changes nothing; now
    known, it runs the changed recipes, and the `ogdc` check turns green.
    """
    assert rejected.delivery_id is not None
    stored = await stored_delivery(pipeline, rejected.forge, rejected.delivery_id)
    push = stored.event_of(forge)
    pusher = push.pusher if isinstance(push, Push) else None
    account = await known_user(pipeline, rejected.forge, pusher)
    async with pipeline.database.engine.begin() as connection:
        if account is None:
            await store.change_state(
                connection,
                rejected.id,
                RunState.REJECTED,
                f"{unknown_pusher(forge, rejected.forge, pusher)} "
                f"(Re-run by @{by}: still not a known user.)",
            )
            return
        accepted = await store.change_state(
            connection,
            rejected.id,
            RunState.SUCCEEDED,
            f"@{pusher} is now a known user; the push was handled again at {by}'s request.",
            only_from=[RunState.REJECTED],
        )
        if not accepted:
            return  # handled again before (a repeated or replayed request)
        await enqueue_delivery(connection, JobKind.PUSH, rejected.forge, rejected.delivery_id)
