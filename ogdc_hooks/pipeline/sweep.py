"""The branch-head sweep: a push whose webhook never arrived, found by comparing heads.

Every push job records its repository and, for the default branch, the commit
it took (`branch_heads`). The sweep asks the git server for the head of each
such default branch (`refs.resolve_ref`, under the lookup limits); a head that differs
and that no stored push names becomes a synthetic push delivery, stored and
queued exactly like a webhook's (same dedupe, same reporting), diffed against
the recorded commit. Its pusher is the account the forge links the head
commit's author to: the push runs if that account is a known, active user,
and is refused with a failing check or status like any unknown pusher otherwise.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ogdc_hooks.db.tables import BranchHead
from ogdc_hooks.forges.base import Forge, Push, RepoRef
from ogdc_hooks.jobs.kinds import JobKind
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.webhooks.events import ZERO_SHA, Delivery
from ogdc_hooks.webhooks.store import store_delivery

SWEPT = "ogdc_swept"  # marks a synthetic push payload (the sweep's own, forge-neutral form)

_RECORD = text(
    """
    INSERT INTO branch_heads
      (forge, repository, clone_url, default_branch, commit_sha, installation_id)
    VALUES (:forge, :repository, :clone_url, :default_branch, :commit_sha, :installation_id)
    ON CONFLICT (forge, repository) DO UPDATE SET
      clone_url = EXCLUDED.clone_url,
      default_branch = EXCLUDED.default_branch,
      commit_sha = COALESCE(EXCLUDED.commit_sha, branch_heads.commit_sha),
      installation_id = COALESCE(EXCLUDED.installation_id, branch_heads.installation_id),
      updated_at = now()
    """
)

_PUSH_STORED = text(
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE event = 'push' AND forge = :forge "
    "AND repository = :repository AND payload->>'after' = :sha)"
)


@dataclass(frozen=True)
class Head:
    """A repository seen in a push, and the last default-branch commit taken (if any)."""

    repo: RepoRef
    clone_url: str
    default_branch: str
    commit_sha: str | None


async def record_head(connection: AsyncConnection, head: Head) -> None:
    """Remember the repository; its commit only when given (a push to the default branch)."""
    await connection.execute(
        _RECORD,
        {
            "forge": head.repo.forge,
            "repository": head.repo.name,
            "clone_url": head.clone_url,
            "default_branch": head.default_branch,
            "commit_sha": head.commit_sha,
            "installation_id": head.repo.hint,
        },
    )


async def seen_heads(engine: AsyncEngine, forge: str) -> list[Head]:
    """The heads recorded for pushes from the forge at host `forge`."""
    columns = select(
        BranchHead.repository,
        BranchHead.installation_id,
        BranchHead.clone_url,
        BranchHead.default_branch,
        BranchHead.commit_sha,
    ).where(BranchHead.forge == forge)
    async with engine.connect() as connection:
        rows = (await connection.execute(columns.order_by(BranchHead.repository))).all()
    return [
        Head(RepoRef(forge, name, hint), clone_url, branch, sha)
        for name, hint, clone_url, branch, sha in rows
    ]


def synthetic_push(head: Head, current: str, author: str | None) -> Delivery:
    """The push a webhook would have delivered for `head` moving to `current`, in the sweep's
    own form (`swept_push` reads it back)."""
    payload: dict[str, Any] = {
        SWEPT: True,
        "ref": f"refs/heads/{head.default_branch}",
        "before": head.commit_sha,
        "after": current,
        "repository": {
            "full_name": head.repo.name,
            "clone_url": head.clone_url,
            "default_branch": head.default_branch,
        },
        "hint": head.repo.hint,
        "pusher": author,
    }
    guid = uuid.uuid5(uuid.NAMESPACE_URL, f"{head.repo.forge}/{head.repo.name}@{current}")
    return Delivery(
        id=f"sweep-{guid}",
        event="push",
        action=None,
        repository=head.repo.name,
        payload=payload,
        payload_json=json.dumps(payload),
        forge=head.repo.forge,
    )


def swept_push(forge: str, payload: dict[str, Any], delivery_id: str) -> Push:
    """The push `synthetic_push` stored."""
    repository = payload["repository"]
    return Push(
        repo=RepoRef(forge, repository["full_name"], payload.get("hint")),
        ref=payload["ref"],
        before=payload.get("before") or ZERO_SHA,
        after=payload["after"],
        default_branch=repository["default_branch"],
        pusher=payload.get("pusher"),
        clone_url=repository["clone_url"],
        forced=False,
        created=False,
        deleted=False,
        delivery_id=delivery_id,
        swept=True,
    )


async def sweep_head(pipeline: Pipeline, pool: asyncpg.Pool, forge: Forge, head: Head) -> bool:
    """Queue the default branch's head as a push when it moved without a stored push;
    True when a push was queued. Raises `GitError` or a forge error when it cannot ask."""
    if head.commit_sha is None:
        return False
    token = await pipeline.git_token(head.repo)
    current = await pipeline.resolve_ref(head.clone_url, f"refs/heads/{head.default_branch}", token)
    if current is None or current == head.commit_sha:
        return False
    async with pipeline.database.engine.connect() as connection:
        stored = await connection.scalar(
            _PUSH_STORED, {"forge": head.repo.forge, "repository": head.repo.name, "sha": current}
        )
    if stored:
        return False
    author = await forge.commit_author(head.repo, current)
    push = synthetic_push(head, current, author)
    return await store_delivery(pool, push, JobKind.PUSH, answer="swept")
