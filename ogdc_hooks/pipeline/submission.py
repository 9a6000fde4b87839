"""Submitting a recipe through the token API: the same runs as a push, asked for directly."""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import select

from ogdc_hooks.checkout import GitError
from ogdc_hooks.db.tables import InstallationRepository
from ogdc_hooks.pipeline import runs
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.push import dry_run_reason
from ogdc_hooks.pipeline.runs import NewRun, RunRecord
from ogdc_hooks.pipeline.sources import RecipeSource, on_forge
from ogdc_hooks.refs import resolve_ref


class SubmissionRefused(Exception):
    """The submission cannot be queued; `status` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _installation(pipeline: Pipeline, repository: str) -> int | None:
    async with pipeline.database.sessions() as session:
        return await session.scalar(
            select(InstallationRepository.installation_id).where(
                InstallationRepository.full_name == repository
            )
        )


async def _commit(pipeline: Pipeline, source: RecipeSource, token: str | None) -> str:
    try:
        sha = await resolve_ref(
            pipeline.session,
            source.clone_url,
            source.ref,
            token,
            timeout_s=pipeline.limits.lookup_timeout_s,
            max_refs=pipeline.limits.max_refs,
        )
    except GitError as err:
        raise SubmissionRefused(503 if err.transient else 422, str(err)) from None
    if sha is None:
        raise SubmissionRefused(
            422, f"{source.ref!r} is not a branch or tag of {source.repository}"
        )
    return sha


async def submit_recipe(
    pipeline: Pipeline, source: RecipeSource, requested_by: str, overwrite: bool
) -> RunRecord:
    """Resolve the ref to a commit and queue a new run of the recipe there."""
    forge_repository = on_forge(source.repository)
    installation_id = await _installation(pipeline, source.repository) if forge_repository else None
    token = None
    if forge_repository and pipeline.forge is not None:
        token = await pipeline.forge.clone_token(source.repository, installation_id)
    sha = await _commit(pipeline, source, token)
    reason = dry_run_reason(pipeline, None, None)
    new = NewRun(
        repository=source.repository,
        clone_url=source.clone_url,
        commit_sha=sha,
        recipe=source.path,
        trigger="api",
        ref=source.ref,
        requested_by=requested_by,
        overwrite=overwrite,
        dry_run=reason is not None,
        installation_id=installation_id,
        message=reason,
    )
    async with pipeline.database.engine.begin() as connection:
        return await runs.create_next_attempt(connection, new)


async def wait_for_workflow(pipeline: Pipeline, run_id: uuid.UUID, within: float) -> RunRecord:
    """The run once it has a workflow name or is finished, or as it is after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        run = await runs.get_run(pipeline.database.engine, run_id)
        assert run is not None
        if run.workflow_name or run.state.finished or time.monotonic() >= deadline:
            return run
        await asyncio.sleep(0.1)
