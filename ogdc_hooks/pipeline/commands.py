"""`/ogdc run` comments on pull requests (the `command` job): a known user's approval submits
the pull request's changed recipes at its head, as separate runs and checks.

Off unless `OGDC_PR_RUN_REPOSITORIES` lists the repository. The commenter must be an active
user with a login on the forge, and not the pull request's author unless an admin: the
author cannot approve their own code. The approval is for the head the comment saw (the
pull request's head as of the comment's time): once a newer head arrived first, nothing
runs and the reply says a new comment is needed. Only recipes the pull request's
validation found changed and valid at that head are run. Every refusal is a `confused`
reaction and a reply saying why; an accepted command gets `rocket` and a reply listing runs.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select

from ogdc_hooks.db.tables import PullRequest as PullRequestRow
from ogdc_hooks.forges.base import RunCommand
from ogdc_hooks.jobs.kinds import delivery_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.deliveries import stored_delivery
from ogdc_hooks.pipeline.requesters import known_user
from ogdc_hooks.pipeline.store import NewRun, RunRecord
from ogdc_hooks.runstate import RunState
from ogdc_hooks.settings import listed

log = logging.getLogger(__name__)
PULL_REQUESTS = cast(Table, PullRequestRow.__table__)
TRIGGER = "comment"


class Refused(Exception):
    """Why a command runs nothing, in words for the reply."""


async def _pull_request(pipeline: Pipeline, command: RunCommand) -> Any:
    async with pipeline.database.engine.connect() as connection:
        row = (
            await connection.execute(
                select(PULL_REQUESTS).where(
                    PULL_REQUESTS.c.forge == command.repo.forge,
                    PULL_REQUESTS.c.repository == command.repo.name,
                    PULL_REQUESTS.c.number == command.number,
                )
            )
        ).first()
    if row is None:
        raise Refused(
            "ogdc-hooks has not seen this pull request yet (it was opened before the service "
            "was set up for the repository); push to it, then comment again."
        )
    if not row.open:
        raise Refused("the pull request is closed.")
    return row


async def _validated(pipeline: Pipeline, command: RunCommand, head: str) -> list[RunRecord]:
    """The newest validation of each recipe the pull request changes at `head`."""
    async with pipeline.database.engine.connect() as connection:
        rows = await connection.execute(
            select(store.RUNS)
            .where(
                store.RUNS.c.forge == command.repo.forge,
                store.RUNS.c.repository == command.repo.name,
                store.RUNS.c.commit_sha == head,
                store.RUNS.c.trigger == "pull_request",
                store.RUNS.c.pull_request == command.number,
                store.RUNS.c.recipe != "",
            )
            .order_by(store.RUNS.c.recipe, store.RUNS.c.attempt.desc())
        )
        newest: dict[str, RunRecord] = {}
        for row in rows:
            newest.setdefault(row.recipe, RunRecord.from_row(row))
    return list(newest.values())


async def _chosen(
    pipeline: Pipeline, command: RunCommand, received_at: datetime
) -> tuple[str, list[RunRecord], str]:
    """(the head, the validated runs to submit, the commenter's user name), or `Refused`."""
    login = command.commenter or "someone"
    if not listed(pipeline.settings.pr_run_repositories, command.repo.name):
        raise Refused(
            "running from pull requests is off for this repository "
            "(OGDC_PR_RUN_REPOSITORIES does not list it)."
        )
    user = await known_user(pipeline, command.repo.forge, command.commenter)
    if user is None:
        raise Refused(f"@{login} is not a known, active ogdc-hooks user.")
    pull = await _pull_request(pipeline, command)
    if (pull.author or "").lower() == login.lower() and not user.is_admin:
        raise Refused(
            f"@{login} opened this pull request, and an author cannot approve running their "
            "own change; another known user (or an admin) must comment `/ogdc run`."
        )
    if pull.head_at > (command.at or received_at):
        raise Refused(
            f"the pull request's head moved to `{pull.head_sha[:12]}` after this comment; "
            "comment `/ogdc run` again to run that commit."
        )
    runs = await _validated(pipeline, command, pull.head_sha)
    if command.recipe is not None:
        runs = [run for run in runs if run.recipe == command.recipe]
        if not runs:
            raise Refused(
                f"`{command.recipe}` is not a recipe this pull request changes at "
                f"`{pull.head_sha[:12]}` (or its check has not finished yet)."
            )
    valid = [run for run in runs if run.state is RunState.DRY_RUN]
    if not valid:
        raise Refused(
            f"no changed recipe at `{pull.head_sha[:12]}` is valid and validated yet; "
            "wait for the checks, fix what fails, and comment again."
        )
    return pull.head_sha, valid, user.name


async def _submit(
    pipeline: Pipeline, command: RunCommand, validated: RunRecord, requester: str
) -> RunRecord:
    """A run of the validated recipe at its commit, prepared and submitted like a push's; one
    per comment (a repeated job finds it)."""
    new = NewRun(
        forge=validated.forge,
        repository=validated.repository,
        clone_url=validated.clone_url,
        commit_sha=validated.commit_sha,
        recipe=validated.recipe,
        trigger=TRIGGER,
        ref=validated.ref,
        requested_by=requester,
        overwrite=True,
        installation_id=validated.installation_id,
        delivery_id=command.delivery_id,
        pull_request=command.number,
    )
    async with pipeline.database.engine.begin() as connection:
        found = await store.find_delivery_run(connection, new)
        return found or await store.create_next_attempt(connection, new)


async def handle_command(pipeline: Pipeline, job: Job) -> None:
    stored = await stored_delivery(pipeline, *delivery_of(job))
    forge = pipeline.forges.get(stored.forge_host)
    command = stored.event_of(forge)
    if forge is None or not isinstance(command, RunCommand):
        log.info("delivery %s asks for no command; ignored", stored.id)
        return
    assert stored.received_at is not None
    try:
        head, runs, requester = await _chosen(pipeline, command, stored.received_at)
    except Refused as refused:
        log.info("/ogdc run on %s#%d refused: %s", command.repo.name, command.number, refused)
        await forge.answer_command(command, False, f"Nothing was run: {refused}")
        return
    started = [await _submit(pipeline, command, run, requester) for run in runs]
    listing = "\n".join(f"- `{run.recipe}`: run `{run.id}`" for run in started)
    await forge.answer_command(
        command,
        True,
        f"Running {len(started)} recipe(s) at `{head[:12]}`, as @{command.commenter} asked:\n"
        f"{listing}\n\nA later push needs a new `/ogdc run`.",
    )
