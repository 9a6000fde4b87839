"""The admin page's recent deliveries against a real PostgreSQL: what each was answered,
its redeliveries, and the state of the job it made."""

from __future__ import annotations

import asyncpg

from ogdc_hooks.db.engine import Database
from ogdc_hooks.jobs.kinds import JobKind, delivery_key
from ogdc_hooks.ui.queries import recent_deliveries
from ogdc_hooks.webhooks.store import store_delivery
from tests.webhooks.conftest import db, pool
from tests.webhooks.test_events import PUSH
from tests.webhooks.test_group_commit import push_delivery

__all__ = ["db", "pool"]


async def test_each_delivery_shows_its_answer_repeats_and_job(
    db: Database, pool: asyncpg.Pool
) -> None:
    await store_delivery(pool, push_delivery("accepted"), JobKind.PUSH)
    await store_delivery(pool, push_delivery("failing"), JobKind.PUSH)
    await store_delivery(
        pool, push_delivery("tag", PUSH | {"ref": "refs/tags/v1"}), None, "ignored"
    )
    for _ in range(3):
        await store_delivery(pool, push_delivery("accepted"), JobKind.PUSH)
    await store_delivery(pool, push_delivery("swept"), JobKind.PUSH, "swept")
    await pool.execute(
        "UPDATE jobs SET state = 'failed', last_error = 'the <clone> failed' WHERE dedupe_key = $1",
        delivery_key("github.com", "failing"),
    )

    rows = {row.id: row for row in await recent_deliveries(db.engine)}

    shown = {
        i: (row.answer, row.repeats, row.repeated_at is not None, row.job)
        for i, row in rows.items()
    }
    assert shown == {
        "accepted": ("202 accepted", 3, True, "queued"),
        "failing": ("202 accepted", 0, False, "failed: the <clone> failed"),
        "tag": ("200 ignored (event not handled)", 0, False, None),
        "swept": (
            "none: found by the branch-head sweep, not sent by the forge",
            0,
            False,
            "queued",
        ),
    }
    accepted = rows["accepted"]
    assert accepted.repeated_at is not None and accepted.repeated_at >= accepted.received_at
