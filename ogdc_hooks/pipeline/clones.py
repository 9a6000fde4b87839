"""A commit's work tree for a job: cloned under the pipeline's limits on the git pool, and a
git failure turned into the queue's transient or permanent error."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from ogdc_hooks.checkout import GitError, GitToken, checkout, run_git
from ogdc_hooks.jobs.errors import PermanentError, TransientError
from ogdc_hooks.pipeline.context import Pipeline


def git_failure(err: GitError) -> Exception:
    return TransientError(str(err)) if err.transient else PermanentError(str(err))


@contextlib.asynccontextmanager
async def checked_out(
    pipeline: Pipeline,
    clone_url: str,
    sha: str,
    token: GitToken | None,
    extra: tuple[str, ...] = (),
    *,
    meet: str | None = None,
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
        meet=meet,
    )
    try:
        path = await run_git(manager.__enter__)
    except GitError as err:
        raise git_failure(err) from None
    try:
        yield path
    finally:
        await run_git(manager.__exit__, None, None, None)
