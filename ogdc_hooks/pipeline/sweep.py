"""The branch-head sweep: a push whose webhook never arrived, found by comparing heads.

Every push job records its repository and, for the default branch, the commit
it took (`branch_heads`). The sweep asks the git server for the head of each
such default branch (`refs.resolve_ref`, under the lookup limits); a head that differs
and that no stored push names becomes a synthetic push delivery, stored and
queued exactly like a webhook's (same dedupe, same reporting), diffed against
the recorded commit. Its pusher is the GitHub account GitHub links the head
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
from ogdc_hooks.forges.github.reporter import GitHubReporter
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.webhooks.events import Delivery
from ogdc_hooks.webhooks.store import store_delivery

SWEPT = "ogdc_swept"  # marks a synthetic push payload

_RECORD = text(
    """
    INSERT INTO branch_heads (repository, clone_url, default_branch, commit_sha, installation_id)
    VALUES (:repository, :clone_url, :default_branch, :commit_sha, :installation_id)
    ON CONFLICT (repository) DO UPDATE SET
      clone_url = EXCLUDED.clone_url,
      default_branch = EXCLUDED.default_branch,
      commit_sha = COALESCE(EXCLUDED.commit_sha, branch_heads.commit_sha),
      installation_id = COALESCE(EXCLUDED.installation_id, branch_heads.installation_id),
      updated_at = now()
    """
)

_PUSH_STORED = text(
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE event = 'push' "
    "AND repository = :repository AND payload->>'after' = :sha)"
)


@dataclass(frozen=True)
class Head:
    """A repository seen in a push, and the last default-branch commit taken (if any)."""

    repository: str
    clone_url: str
    default_branch: str
    commit_sha: str | None
    installation_id: int | None


async def record_head(connection: AsyncConnection, head: Head) -> None:
    """Remember the repository; its commit only when given (a push to the default branch)."""
    await connection.execute(
        _RECORD,
        {
            "repository": head.repository,
            "clone_url": head.clone_url,
            "default_branch": head.default_branch,
            "commit_sha": head.commit_sha,
            "installation_id": head.installation_id,
        },
    )


async def seen_heads(engine: AsyncEngine) -> list[Head]:
    columns = select(
        BranchHead.repository,
        BranchHead.clone_url,
        BranchHead.default_branch,
        BranchHead.commit_sha,
        BranchHead.installation_id,
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(columns.order_by(BranchHead.repository))).all()
    return [Head(*row) for row in rows]


def synthetic_push(head: Head, current: str, author: str | None) -> Delivery:
    """The push a webhook would have delivered for `head` moving to `current`."""
    payload: dict[str, Any] = {
        "ref": f"refs/heads/{head.default_branch}",
        "before": head.commit_sha,
        "after": current,
        "forced": False,
        "deleted": False,
        "repository": {
            "full_name": head.repository,
            "clone_url": head.clone_url,
            "default_branch": head.default_branch,
        },
        SWEPT: True,
    }
    if author:
        payload["sender"] = {"login": author}
    if head.installation_id is not None:
        payload["installation"] = {"id": head.installation_id}
    guid = uuid.uuid5(uuid.NAMESPACE_URL, f"{head.repository}@{current}")
    return Delivery(
        id=f"sweep-{guid}",
        event="push",
        action=None,
        repository=head.repository,
        payload=payload,
        payload_json=json.dumps(payload),
    )


async def sweep_head(
    pipeline: Pipeline, pool: asyncpg.Pool, forge: GitHubReporter, head: Head
) -> bool:
    """Queue the default branch's head as a push when it moved without a stored push;
    True when a push was queued. Raises `GitError` or a forge error when it cannot ask."""
    if head.commit_sha is None:
        return False
    token = await forge.clone_token(head.repository, head.installation_id)
    current = await pipeline.resolve_ref(head.clone_url, f"refs/heads/{head.default_branch}", token)
    if current is None or current == head.commit_sha:
        return False
    async with pipeline.database.engine.connect() as connection:
        stored = await connection.scalar(
            _PUSH_STORED, {"repository": head.repository, "sha": current}
        )
    if stored:
        return False
    author = await forge.commit_author(head.repository, current, head.installation_id)
    return await store_delivery(pool, synthetic_push(head, current, author), "push")
