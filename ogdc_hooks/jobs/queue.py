"""The job table as a queue: enqueue, claim (FOR UPDATE SKIP LOCKED), renew, finish, retry.

A job is identified by its `dedupe_key` (e.g. `submit:<run id>`): asking for a
job that exists re-queues it instead of adding a twin, and asking while it runs
sets `again` so it runs once more afterwards with fresh data. A claimed job
holds a lease; a worker that dies loses it, and the job is claimed again. Such a
takeover counts in `crashes` (unless the database server restarted while the job
was held): a job that took two workers down with it is not run a third time (the
worker gives it up as poisoned).

A job may name its repository (`jobs.repository`): a claim skips the jobs of a
repository that already has `per_repository` jobs running, so one busy
repository (or one whose git server is slow) cannot hold every worker while the
others wait. Claims are serialised by a transaction-level advisory lock, so two
workers cannot both take a repository's last free place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

NOTIFY_CHANNEL = "ogdc_jobs"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    dedupe_key: str | None
    crashes: int = 0  # times another worker took it over from one that died holding it


_ENQUEUE = text(
    """
    INSERT INTO jobs (kind, payload, dedupe_key, max_attempts, run_after, repository)
    VALUES (:kind, CAST(:payload AS jsonb), :key, :max_attempts,
            now() + make_interval(secs => :delay), :repository)
    ON CONFLICT (dedupe_key) DO UPDATE SET
      again = (jobs.state = 'running'),
      state = CASE WHEN jobs.state = 'running' THEN 'running' ELSE 'queued' END,
      attempts = CASE WHEN jobs.state = 'running' THEN jobs.attempts ELSE 0 END,
      crashes = CASE WHEN jobs.state = 'running' THEN jobs.crashes ELSE 0 END,
      payload = EXCLUDED.payload,
      run_after = CASE WHEN jobs.state = 'running' OR (:keep_place AND jobs.state = 'queued')
        THEN jobs.run_after ELSE EXCLUDED.run_after END,
      last_error = CASE WHEN jobs.state = 'running' THEN jobs.last_error ELSE NULL END,
      updated_at = now()
    RETURNING id
    """
)


async def enqueue(
    connection: AsyncConnection,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str,
    max_attempts: int = 8,
    delay: float = 0.0,
    keep_place: bool = False,
    repository: str | None = None,
) -> int:
    """Ask for a job inside the caller's transaction; workers hear of it on commit.

    A job asked for again while it is queued is made ready at once, unless `keep_place`:
    then it keeps its time (its place in the line, or the time it was deferred to), so that
    a job asked for all the time neither goes to the back of the line nor runs early. Jobs
    of one `repository` (`kinds.repository_key`) run at most `per_repository` at a time."""
    job_id = (
        await connection.execute(
            _ENQUEUE,
            {
                "kind": kind,
                "payload": json.dumps(payload),
                "key": key,
                "max_attempts": max_attempts,
                "delay": delay,
                "keep_place": keep_place,
                "repository": repository,
            },
        )
    ).scalar_one()
    await connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    return int(job_id)


_CLAIM = text(
    """
    UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1,
      locked_by = CAST(:worker AS text),
      crashes = jobs.crashes
        + CASE WHEN jobs.state = 'running' AND jobs.locked_by <> :worker
                AND jobs.updated_at > pg_postmaster_start_time()
          THEN 1 ELSE 0 END,
      lease_until = now() + make_interval(secs => :lease), updated_at = now()
    WHERE id = (
      SELECT id FROM jobs
      WHERE ((state = 'queued' AND run_after <= now())
             OR (state = 'running' AND lease_until < now()))
        AND (repository IS NULL OR repository NOT IN (
          SELECT busy.repository FROM jobs AS busy
          WHERE busy.state = 'running' AND busy.lease_until >= now()
            AND busy.repository IS NOT NULL
          GROUP BY busy.repository HAVING count(*) >= :per_repository))
      ORDER BY run_after, id
      FOR UPDATE SKIP LOCKED
      LIMIT 1
    )
    RETURNING id, kind, payload, attempts, max_attempts, dedupe_key, crashes
    """
)


# Any constant: the key of the advisory lock every claim holds until it commits.
_CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(7478033791)")


async def claim(
    engine: AsyncEngine, worker: str, lease: float, per_repository: int = 2**31 - 1
) -> Job | None:
    """Take the oldest ready job (or one whose holder's lease ran out) of a repository with
    fewer than `per_repository` jobs running, if any.

    A job taken over from another worker counts as a crash of that worker; one
    taken back by its own (living) worker after a failed bookkeeping does not, nor
    one whose holder last claimed or renewed it before the database server
    started: a restart of PostgreSQL, not the job, is then why its lease ran out
    (every holder's bookkeeping failed with the server), and such a job must not
    be given up as poisoned after one more real crash.
    """
    async with engine.begin() as connection:
        await connection.execute(_CLAIM_LOCK)  # the claim's snapshot sees earlier claims
        parameters = {"worker": worker, "lease": lease, "per_repository": per_repository}
        row = (await connection.execute(_CLAIM, parameters)).first()
    if row is None:
        return None
    return Job(
        row.id, row.kind, row.payload, row.attempts, row.max_attempts, row.dedupe_key, row.crashes
    )


async def renew(engine: AsyncEngine, worker: str, lease: float, ids: list[int]) -> set[int]:
    """Extend the leases of the jobs `ids` (and mark them touched, see `claim`); those missing
    from the answer are no longer ours."""
    async with engine.begin() as connection:
        result = await connection.execute(
            text(
                "UPDATE jobs SET lease_until = now() + make_interval(secs => :lease), "
                "updated_at = now() WHERE id = ANY(CAST(:ids AS bigint[])) AND locked_by = :worker "
                "AND state = 'running' RETURNING id"
            ),
            {"ids": ids, "worker": worker, "lease": lease},
        )
        return {int(job_id) for job_id in result.scalars()}


async def release(engine: AsyncEngine, job: Job, worker: str) -> None:
    """Hand a job back untouched (its worker stops): ready at once, the attempt not counted."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE jobs SET state = 'queued', again = false, locked_by = NULL, "
                "lease_until = NULL, attempts = greatest(attempts - 1, 0), run_after = now(), "
                "updated_at = now() WHERE id = :id AND locked_by = :worker AND state = 'running'"
            ),
            {"id": job.id, "worker": worker},
        )
        await connection.execute(text("SELECT pg_notify(:c, '')"), {"c": NOTIFY_CHANNEL})


async def finish(engine: AsyncEngine, job: Job, worker: str) -> None:
    """Mark done, or queue once more if it was asked for while running."""
    async with engine.begin() as connection:
        result = await connection.execute(
            text(
                "UPDATE jobs SET state = CASE WHEN again THEN 'queued' ELSE 'done' END, "
                "attempts = CASE WHEN again THEN 0 ELSE attempts END, "
                "crashes = CASE WHEN again THEN 0 ELSE crashes END, again = false, "
                "locked_by = NULL, lease_until = NULL, run_after = now(), updated_at = now() "
                "WHERE id = :id AND locked_by = :worker AND state = 'running' RETURNING state"
            ),
            {"id": job.id, "worker": worker},
        )
        if result.scalar_one_or_none() == "queued":
            await connection.execute(text("SELECT pg_notify(:c, '')"), {"c": NOTIFY_CHANNEL})


async def met(connection: AsyncConnection, job: Job) -> None:
    """The running job has read the state it acts on (inside the caller's transaction): a
    "once more" asked for before that read is met by this run, so it is not run again
    for it. The caller must hold locks that make later changes wait for its commit."""
    await connection.execute(
        text("UPDATE jobs SET again = false WHERE id = :id AND state = 'running'"),
        {"id": job.id},
    )


async def retry_later(
    engine: AsyncEngine,
    job: Job,
    worker: str,
    delay: float,
    error: str,
    *,
    count_attempt: bool = True,
) -> None:
    """Put a transiently failed job back, to be claimed after `delay` seconds; a deferred job
    (`count_attempt=False`) gets its attempt back."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE jobs SET state = 'queued', again = false, locked_by = NULL, "
                "lease_until = NULL, last_error = :error, updated_at = now(), "
                "attempts = CASE WHEN :counted THEN attempts ELSE greatest(attempts - 1, 0) END, "
                "run_after = now() + make_interval(secs => :delay) "
                "WHERE id = :id AND locked_by = :worker AND state = 'running'"
            ),
            {
                "id": job.id,
                "worker": worker,
                "delay": delay,
                "error": error[:2000],
                "counted": count_attempt,
            },
        )


async def fail(engine: AsyncEngine, job: Job, worker: str, error: str) -> None:
    """Give up on a job for good; the reason stays in `last_error`."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE jobs SET state = 'failed', again = false, locked_by = NULL, "
                "lease_until = NULL, last_error = :error, updated_at = now() "
                "WHERE id = :id AND locked_by = :worker AND state = 'running'"
            ),
            {"id": job.id, "worker": worker, "error": error[:2000]},
        )


async def next_ready_at(engine: AsyncEngine) -> datetime | None:
    """When the next queued job becomes ready (or a lease runs out): how long a worker may sleep.

    Jobs ready now are not counted: a claim that found nothing passed them over (their
    repository at its limit, or another worker taking them), and the worker that ends one
    of that repository's jobs claims again at once.
    """
    async with engine.connect() as connection:
        value: datetime | None = (
            await connection.execute(
                text(
                    "SELECT min(t) FROM ("
                    " SELECT min(run_after) AS t FROM jobs"
                    " WHERE state = 'queued' AND run_after > now()"
                    " UNION ALL SELECT min(lease_until) FROM jobs"
                    " WHERE state = 'running' AND lease_until > now()) AS s"
                )
            )
        ).scalar_one_or_none()
    return value
