"""A commit for a job: fetched under the pipeline's limits on the git pool, and a git failure
turned into the queue's transient or permanent error."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from ogdc_hooks.checkout import GitError, GitToken, Trees, fetch_trees, run_git
from ogdc_hooks.jobs.errors import PermanentError, TransientError
from ogdc_hooks.pipeline.context import Pipeline

T = TypeVar("T")


def git_failure(err: GitError) -> Exception:
    return TransientError(str(err)) if err.transient else PermanentError(str(err))


async def in_git(work: Callable[..., T], *args: object) -> T:
    """Run blocking git work on the git pool; its `GitError` becomes the queue's error."""
    try:
        return await run_git(work, *args)
    except GitError as err:
        raise git_failure(err) from None


@contextlib.asynccontextmanager
async def fetched(
    pipeline: Pipeline,
    clone_url: str,
    sha: str,
    token: GitToken | None,
    extra: tuple[str, ...] = (),
    *,
    meet: str | None = None,
) -> AsyncIterator[Trees]:
    """The commit (and `extra`) without its files, in a temporary directory made and removed
    on the git pool; `Trees.check_out` (through `in_git`) brings the files wanted. With
    `meet`, enough history to find the merge base with it (`Trees.merge_base`)."""
    manager = fetch_trees(
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
    trees = await in_git(manager.__enter__)
    try:
        yield trees
    finally:
        await run_git(manager.__exit__, None, None, None)
