"""A newer push to the default branch cancels the unfinished older runs of the recipes it
changes (README "Cancel and retry"), unless `OGDC_CANCEL_SUPERSEDED` is false or
`OGDC_KEEP_SUPERSEDED_REPOSITORIES` lists the repository.

"Older" is proved, never assumed: a run is superseded only when its commit is one the
branch moved on from, found by walking back the stored pushes of the repository
(each push's `before` is the `after` of the one it followed). A late delivery of an
older push therefore finds no newer run in its own past, and cancels nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from fnmatch import fnmatchcase

from sqlalchemy import select

from ogdc_hooks.forges.base import Forge, Push
from ogdc_hooks.pipeline import actions
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.store import DELIVERIES, RUNS, RunRecord
from ogdc_hooks.settings import Settings
from ogdc_hooks.webhooks.events import ZERO_SHA

MAX_PUSHES_BACK = 100  # how far back the branch's pushes are followed


def keeps_superseded(settings: Settings, repository: str) -> bool:
    """Whether older runs of the repository's recipes are left running."""
    name = repository.lower()
    return not settings.cancel_superseded or any(
        fnmatchcase(name, pattern) for pattern in settings.keep_superseded_repositories
    )


async def _unfinished(pipeline: Pipeline, push: Push, recipes: Collection[str]) -> list[RunRecord]:
    """The repository's unfinished runs of these recipes on the branch, at other commits."""
    async with pipeline.database.engine.connect() as connection:
        rows = await connection.execute(
            select(RUNS).where(
                RUNS.c.forge == push.repo.forge,
                RUNS.c.repository == push.repo.name,
                RUNS.c.ref == push.ref,
                RUNS.c.recipe.in_(list(recipes)),
                RUNS.c.state.in_([state.value for state in actions.CANCELLABLE]),
                RUNS.c.commit_sha != push.after,
            )
        )
        return [RunRecord.from_row(row) for row in rows]


async def _earlier_commits(pipeline: Pipeline, push: Push, wanted: set[str]) -> set[str]:
    """Which of `wanted` the branch was at before this push (its stored pushes, walked back
    from this one's `before` until every wanted commit is found or the trail ends)."""
    found: set[str] = set()
    frontier = {push.before} - {ZERO_SHA}
    seen: set[str] = set()
    async with pipeline.database.engine.connect() as connection:
        for _ in range(MAX_PUSHES_BACK):
            found |= frontier & wanted
            seen |= frontier
            if found == wanted or not frontier:
                break
            rows = await connection.execute(
                select(DELIVERIES.c.payload["before"].astext).where(
                    DELIVERIES.c.forge == push.repo.forge,
                    DELIVERIES.c.repository == push.repo.name,
                    DELIVERIES.c.event == "push",
                    DELIVERIES.c.payload["after"].astext.in_(frontier),
                )
            )
            frontier = {sha for (sha,) in rows if sha and sha != ZERO_SHA} - seen
    return found


def _superseded_message(forge: Forge | None, push: Push) -> str:
    short = push.after[:7]
    link = f" ({forge.web_url}/{push.repo.name}/commit/{push.after})" if forge else ""
    return (
        f"Superseded by {short}{link}: a newer push to {push.branch} changed this recipe, "
        "so this run was cancelled and its workflow stopped."
    )


async def cancel_superseded(
    pipeline: Pipeline, forge: Forge | None, push: Push, recipes: Collection[str]
) -> int:
    """Cancel the older unfinished runs of `recipes` this push supersedes; how many."""
    if push.branch != push.default_branch or not recipes:
        return 0
    if keeps_superseded(pipeline.settings, push.repo.name):
        return 0
    candidates = await _unfinished(pipeline, push, recipes)
    if not candidates:
        return 0
    older = await _earlier_commits(pipeline, push, {run.commit_sha for run in candidates})
    message = _superseded_message(forge, push)
    cancelled = 0
    for run in candidates:
        if run.commit_sha in older and await actions.cancel(pipeline, run, message):
            cancelled += 1
    return cancelled
