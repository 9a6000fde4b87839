"""Submitting a recipe through the token API: the same runs as a push, asked for directly."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid

from ogdc_hooks.auth.users import Account
from ogdc_hooks.checkout import GitError, GitToken
from ogdc_hooks.jobs.errors import TransientError
from ogdc_hooks.logs import log_event
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.authority import Authority, NotAllowed, authority_for, check_fetchable
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.prepare import dry_run_reason
from ogdc_hooks.pipeline.sources import RecipeSource
from ogdc_hooks.pipeline.store import NewRun, RunRecord
from ogdc_hooks.recipes.load import recipe_dir_of

log = logging.getLogger(__name__)


class SubmissionRefused(Exception):
    """The submission cannot be queued; `status` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# One answer for every way a fetch can fail, so that it never tells what answered there.
UNREADABLE = (
    "The repository cannot be read at that location: it does not exist, this service may "
    "not read it, or its host did not answer. Check recipe_path, or try again later."
)


async def _commit(pipeline: Pipeline, source: RecipeSource, token: GitToken | None) -> str:
    try:
        sha = await pipeline.resolve_ref(source.clone_url, source.ref, token)
    except GitError as err:
        log_event(log, "submission_unreadable", repository=source.repository, error=str(err))
        raise SubmissionRefused(422, UNREADABLE) from None
    if sha is None:
        raise SubmissionRefused(
            422, f"{source.ref!r} is not a branch or tag of {source.repository}"
        )
    return sha


async def _authority(pipeline: Pipeline, source: RecipeSource, user: Account) -> Authority:
    try:
        await check_fetchable(pipeline.settings, source.clone_url)
    except NotAllowed as err:
        raise SubmissionRefused(422, str(err)) from None
    try:
        return await authority_for(pipeline, source, user)
    except TransientError:
        forge = pipeline.forges.get(source.forge)
        label = forge.label if forge else "The forge"
        raise SubmissionRefused(503, f"{label} did not answer; try again shortly.") from None


def _reported(source: RecipeSource) -> bool:
    """Only a recipe directory (`recipes/<dir>`) speaks on the commit, as pushes do."""
    return recipe_dir_of(f"{source.path}/meta.yml") == source.path


async def submit_recipe(
    pipeline: Pipeline, source: RecipeSource, user: Account, overwrite: bool
) -> RunRecord:
    """Resolve the ref to a commit and queue a new run of the recipe there.

    Without the authority to act on the forge repository it is fetched anonymously
    and recorded under its URL, so it neither uses nor reports with our credentials.
    """
    authority = await _authority(pipeline, source, user)
    if not authority.acts:
        source = dataclasses.replace(source, repository=source.clone_url)
    sha = await _commit(pipeline, source, authority.token)
    reason = dry_run_reason(pipeline, None, None)
    new = NewRun(
        forge=source.forge,
        repository=source.repository,
        clone_url=source.clone_url,
        commit_sha=sha,
        recipe=source.path,
        trigger="api",
        ref=source.ref,
        requested_by=user.name,
        overwrite=overwrite,
        dry_run=reason is not None,
        installation_id=authority.installation_id,
        reports=authority.acts and _reported(source),
        message=None,  # queued says nothing yet; the dry-run reason comes with its outcome
    )
    async with pipeline.database.engine.begin() as connection:
        return await store.create_next_attempt(connection, new)


async def wait_for_workflow(pipeline: Pipeline, run_id: uuid.UUID, within: float) -> RunRecord:
    """The run once it has a workflow name or is finished, or as it is after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        run = await store.get_run(pipeline.database.engine, run_id)
        assert run is not None
        if run.workflow_name or run.state.finished or time.monotonic() >= deadline:
            return run
        await asyncio.sleep(0.1)
