"""Storing a delivery and its job in one statement, before the delivery is acknowledged.

One round trip on a plain asyncpg pool, one implicit transaction: the delivery
row and the job row commit together or not at all. The sending forge's host and
the delivery id are the primary key, so a redelivery stores nothing and is
reported as such.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ogdc_hooks.jobs.kinds import JobKind
from ogdc_hooks.webhooks.events import Delivery

_STORE = """
WITH stored AS (
  INSERT INTO deliveries (id, event, action, repository, payload, forge)
  VALUES ($1, $2, $3, $4, $5::jsonb, $7)
  ON CONFLICT (forge, id) DO NOTHING
  RETURNING id, forge
), queued AS (
  INSERT INTO jobs (kind, payload, dedupe_key)
  SELECT $6::text, jsonb_build_object('delivery', id, 'forge', forge),
         'delivery:' || forge || ':' || id  -- jobs.kinds.delivery_key
  FROM stored WHERE $6::text IS NOT NULL
  ON CONFLICT (dedupe_key) DO NOTHING
  RETURNING id
)
SELECT (SELECT count(*) FROM stored) > 0 AS stored, (SELECT count(*) FROM queued) AS queued
"""


async def _execute(pool: asyncpg.Pool, arguments: tuple[Any, ...]) -> bool:
    return bool(await pool.fetchval(_STORE, *arguments))


async def store_delivery(pool: asyncpg.Pool, delivery: Delivery, job_kind: JobKind | None) -> bool:
    """Store the delivery (and its job); False when this id was stored before (a redelivery).

    Workers are not woken here: the caller pokes a `jobs.wakeup.WakeUp`.
    """
    arguments: tuple[Any, ...] = (
        delivery.id,
        delivery.event[:100],
        (delivery.action or "")[:100] or None,
        (delivery.repository or "")[:300] or None,
        delivery.payload_json,
        str(job_kind) if job_kind else None,
        delivery.forge,
    )
    try:
        return await _execute(pool, arguments)
    except asyncpg.UntranslatableCharacterError:
        # JSON may carry \u0000, which jsonb cannot hold: store it re-encoded without NULs.
        cleaned = json.dumps(delivery.payload).replace("\\u0000", "\\ufffd")
        return await _execute(pool, (*arguments[:4], cleaned, *arguments[5:]))
