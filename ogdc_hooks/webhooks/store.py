"""Storing deliveries and their jobs before they are acknowledged, many in one commit.

One statement on a plain asyncpg pool, one implicit transaction: the delivery
rows and their job rows commit together or not at all. The sending forge's host
and the delivery id are the primary key, so a redelivery stores nothing new and is
reported as such; it is counted on the stored row (`repeats`, `repeated_at`). An
ignored event is stored too, with no job and without its body, so that the
dashboard shows what every delivery was answered.

Intake stores through a `DeliveryWriter` (group commit): a delivery waits while
the commit before it is under way, and every delivery waiting when that commit
ends goes into the next one, so a burst costs a few commits instead of one per
delivery, and nothing waits for a timer. Each caller hears only after the
commit holding its delivery: a commit that fails fails every delivery in it.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

from ogdc_hooks.jobs.kinds import JobKind
from ogdc_hooks.webhooks.events import Delivery

# Every row's values as parallel arrays: one statement whatever the batch's size. `again`
# is how many more times the batch held the key (redeliveries that arrived together).
_STORE = """
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::text[], $7::text[], $8::text[], $9::int[])
    AS t(id, event, action, repository, payload, kind, forge, answer, again)
), stored AS (
  INSERT INTO deliveries (id, event, action, repository, payload, forge, answer, repeats,
                          repeated_at)
  SELECT id, event, action, repository, payload::jsonb, forge, answer, again,
         CASE WHEN again > 0 THEN now() END
  FROM input
  -- An id recorded as ignored that now has work (say, an event a setting since enabled,
  -- redelivered) is stored as accepted and gets its job, rather than "already received".
  ON CONFLICT (forge, id) DO UPDATE SET
    event = EXCLUDED.event, action = EXCLUDED.action, repository = EXCLUDED.repository,
    payload = EXCLUDED.payload, answer = EXCLUDED.answer,
    repeats = deliveries.repeats + 1 + EXCLUDED.repeats, repeated_at = now()
  WHERE deliveries.answer = 'ignored' AND EXCLUDED.answer = 'accepted'
  RETURNING id, forge
), queued AS (
  INSERT INTO jobs (kind, payload, dedupe_key, repository)
  SELECT input.kind, jsonb_build_object('delivery', stored.id, 'forge', stored.forge),
         'delivery:' || stored.forge || ':' || stored.id,  -- jobs.kinds.delivery_key
         stored.forge || '/' || input.repository  -- jobs.kinds.repository_key
  FROM stored JOIN input ON input.forge = stored.forge AND input.id = stored.id
  WHERE input.kind IS NOT NULL
  ON CONFLICT (dedupe_key) DO NOTHING
)
SELECT forge, id FROM stored
"""
# Redeliveries of ids stored before, counted by a second statement only when a batch held
# any: joining every batch to the whole table cost intake a third of its rate (the bench's
# table grows faster than its statistics, so the join became a scan).
_COUNT_REPEATS = """
UPDATE deliveries SET repeats = deliveries.repeats + t.times, repeated_at = now()
FROM unnest($1::text[], $2::text[], $3::int[]) AS t(forge, id, times)
WHERE deliveries.forge = t.forge AND deliveries.id = t.id
"""

Key = tuple[str, str]  # (forge host, delivery id)
# What the forge was answered: 202 accepted, 200 ignored; or none, for the branch-head
# sweep's own pushes.
Answer = Literal["accepted", "ignored", "swept"]


@dataclass(frozen=True)
class Row:
    """A delivery as it is stored, the kind of its job (None: no job) and its answer."""

    delivery: Delivery
    job_kind: JobKind | None
    answer: Answer = "accepted"

    @property
    def key(self) -> Key:
        return self.delivery.forge, self.delivery.id

    def values(self, again: int) -> tuple[str | int | None, ...]:
        """Its columns, `again` being how many more times its batch held its key."""
        delivery = self.delivery
        # The body of an event we ignore is never read again: not worth its space.
        text = "{}" if self.answer == "ignored" else delivery.payload_json
        if "\\u0000" in text:  # jsonb cannot hold \u0000: store it re-encoded without NULs
            text = json.dumps(delivery.payload).replace("\\u0000", "\\ufffd")
        return (
            delivery.id,
            delivery.event[:100],
            (delivery.action or "")[:100] or None,
            (delivery.repository or "")[:300] or None,
            text,
            str(self.job_kind) if self.job_kind else None,
            delivery.forge,
            self.answer,
            again,
        )


async def store_rows(pool: asyncpg.Pool, rows: Sequence[Row]) -> set[Key]:
    """Store rows in one statement (and count redeliveries in a second, when there are
    any); the keys of those that were new (the others were stored before: redeliveries,
    counted on the stored row). A key given more than once is stored
    from its first row, the others counted as its redeliveries."""
    first: dict[Key, Row] = {}
    again: Counter[Key] = Counter()
    for row in rows:
        if first.setdefault(row.key, row) is not row:
            again[row.key] += 1
    # In key order, so that two replicas' commits lock the rows they share in one order.
    keys = sorted(first)
    columns = list(zip(*(first[key].values(again[key]) for key in keys), strict=True))
    records = await pool.fetch(_STORE, *(list(column) for column in columns))
    new = {(record["forge"], record["id"]) for record in records}
    if repeated := [key for key in keys if key not in new]:
        # Stored before: a store whose count fails is answered 503, and its retry is a
        # redelivery again (nothing is lost, the count is informational).
        forges, ids = (list(part) for part in zip(*repeated, strict=True))
        await pool.execute(_COUNT_REPEATS, forges, ids, [1 + again[key] for key in repeated])
    return new


async def store_delivery(
    pool: asyncpg.Pool, delivery: Delivery, job_kind: JobKind | None, answer: Answer = "accepted"
) -> bool:
    """Store one delivery (and its job) now; False when this id was stored before.

    Workers are not woken here: the caller pokes a `jobs.wakeup.WakeUp`.
    """
    row = Row(delivery, job_kind, answer)
    return row.key in await store_rows(pool, [row])


@dataclass
class _Waiting:
    row: Row
    answer: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class DeliveryWriter:
    """Group commit for intake: `store` waits for the commit holding the delivery; `run`
    (supervised) makes those commits, one at a time, each of everything waiting."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: list[_Waiting] = []
        self._arrived = asyncio.Event()
        self.committing = 0  # deliveries in the commit under way

    @property
    def waiting(self) -> int:
        """Deliveries waiting for the commit under way to end."""
        return len(self._waiting)

    async def store(
        self, delivery: Delivery, job_kind: JobKind | None, answer: Answer = "accepted"
    ) -> bool:
        """Like `store_delivery`, in the next group commit; raises what that commit raised.

        The pool's timeouts (acquire, command) bound the wait; a caller that is cancelled
        leaves its delivery in the commit (a redelivery then finds it stored).
        """
        waiting = _Waiting(Row(delivery, job_kind, answer))
        self._waiting.append(waiting)
        self._arrived.set()
        return await waiting.answer

    async def run(self) -> None:
        """Commit whatever is waiting, again and again, until cancelled (run it supervised)."""
        while True:
            await self._arrived.wait()
            await asyncio.sleep(0)  # requests read in this turn of the event loop join too
            self._arrived.clear()
            batch, self._waiting = self._waiting, []
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Waiting]) -> None:
        """One statement for the batch's distinct keys; a repeated key waits on its first."""
        first: dict[Key, Row] = {}
        for waiting in batch:
            first.setdefault(waiting.row.key, waiting.row)
        self.committing = len(batch)
        try:
            try:
                new = await store_rows(self._pool, [waiting.row for waiting in batch])
            except asyncpg.DataError:  # one row the server refuses (NaN): each on its own
                await asyncio.gather(*(self._commit_alone(waiting) for waiting in batch))
                return
            for waiting in batch:
                stored = first[waiting.row.key] is waiting.row and waiting.row.key in new
                _settle(waiting.answer, stored)
        except Exception as error:
            for waiting in batch:
                _settle(waiting.answer, error)
        except BaseException:  # the writer stops: whether the commit ended is unknown
            for waiting in batch:
                _settle(waiting.answer, ConnectionAbortedError("the intake writer stopped"))
            raise
        finally:
            self.committing = 0

    async def _commit_alone(self, waiting: _Waiting) -> None:
        try:
            _settle(waiting.answer, waiting.row.key in await store_rows(self._pool, [waiting.row]))
        except Exception as error:
            _settle(waiting.answer, error)


def _settle(answer: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    if answer.done():
        return
    if isinstance(outcome, BaseException):
        answer.set_exception(outcome)
    else:
        answer.set_result(outcome)
