"""Reconciling missed deliveries: what GitHub sent and we never stored is asked for again.

GitHub does not retry a failed delivery, so a push sent while the service, its
ingress or its database was down would never get a check. Shortly after start
and then every `OGDC_RECONCILE_SECONDS`, one replica at a time (a PostgreSQL
advisory lock) looks back `OGDC_RECONCILE_LOOKBACK_HOURS`:

- App mode: the App's webhook deliveries; every GUID of an event we handle
  with no successful attempt, not stored and not asked for before, is
  redelivered once (the GUID is written to `redeliveries` before asking).
- Token mode: the same for our webhooks on every repository seen before, when
  the token may read them; otherwise the branch-head sweep (`sweep.py`).

`reconcile_forever` is the background task: it logs and counts every run,
and a failed run never ends it. Every run that ends (whatever its outcome)
beats `RECONCILED` in the health registry; a run stuck past `stall_bound`
(a GitHub call or a database session that never answers) makes `/readyz`
say so, as the worker's polling does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import delete, select, text, union
from sqlalchemy.dialects.postgresql import insert

from ogdc_hooks.checkout import GitError
from ogdc_hooks.db.tables import Delivery, Redelivery
from ogdc_hooks.forges.github.deliveries import Attempt, Hook, HookDeliveries, missed
from ogdc_hooks.forges.github.errors import PermanentForgeError, TransientForgeError
from ogdc_hooks.forges.github.forge import GitHubForge
from ogdc_hooks.forges.github.webhooks import HANDLED_EVENTS
from ogdc_hooks.jobs.errors import TransientError
from ogdc_hooks.jobs.supervise import Health
from ogdc_hooks.jobs.wakeup import WakeUp
from ogdc_hooks.logs import log_event
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.sweep import Head, seen_heads, sweep_head

log = logging.getLogger(__name__)

RECONCILE_LOCK_KEY = 0x6F676472  # "ogdr": any constant shared by every replica
FIRST_RUN_DELAY = 5.0  # "shortly after start": the server listens by then
NO_HOOK_ACCESS = (403, 404)  # GitHub's answers to a token that may not read webhooks
RECONCILED = "a reconcile run"  # the heartbeat's name in the health registry (and /readyz)
RUN_ALLOWANCE = 600.0  # seconds one run may take (paging 72 h of deliveries, many sweeps)


class Reconciler:
    """One reconcile run at a time, against GitHub and the database."""

    def __init__(
        self,
        pipeline: Pipeline,
        pool: asyncpg.Pool,
        forge: GitHubForge,
        wake_up: WakeUp,
        *,
        lookback: timedelta,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pipeline = pipeline
        self._engine = pipeline.database.engine
        self._pool = pool
        assert forge.reporter is not None  # reconciling needs GitHub's credentials
        self._forge = forge
        self._client = forge.reporter.client
        self._deliveries = HookDeliveries(self._client)
        self._wake_up = wake_up
        self._metrics = pipeline.metrics
        self._lookback = lookback
        self._clock = clock

    async def run_logged(self) -> str:
        """One run that never raises (but for cancellation); its outcome, also counted."""
        started = time.monotonic()
        try:
            outcome, redelivered, swept = await self.run_once()
        except (TransientError, PermanentForgeError, GitError) as err:
            log_event(log, "reconcile_failed", level=logging.WARNING, error=str(err))
            outcome, redelivered, swept = "error", 0, 0
        except Exception:
            log.exception("reconcile_failed")
            outcome, redelivered, swept = "error", 0, 0
        self._metrics.reconcile_runs.labels(outcome).inc()
        if outcome != "skipped":
            log_event(
                log,
                "reconciled",
                outcome=outcome,
                redelivered=redelivered,
                heads_swept=swept,
                seconds=round(time.monotonic() - started, 3),
            )
        return outcome

    async def run_once(self) -> tuple[str, int, int]:
        """(outcome, deliveries redelivered, heads swept); "skipped" while another replica
        reconciles. Raises forge and git errors that stop the run."""
        async with self._lock() as held:
            if not held:
                return "skipped", 0, 0
            since = datetime.fromtimestamp(self._clock(), UTC) - self._lookback
            if self._client.app_mode:
                return "ok", await self._redeliver(Hook(), since), 0
            redelivered = swept = 0
            for head in await seen_heads(self._engine, self._forge.host):
                found, queued = await self._repository(head, since)
                redelivered += found
                swept += queued
            return "ok", redelivered, swept

    async def _repository(self, head: Head, since: datetime) -> tuple[int, int]:
        """Token mode, one repository: its webhooks' deliveries if readable, else its head."""
        try:
            hooks = await self._deliveries.repository_hooks(head.repo.name)
        except PermanentForgeError as err:
            if err.status not in NO_HOOK_ACCESS:
                raise
            hooks = []
        if hooks:
            return sum([await self._redeliver(hook, since) for hook in hooks]), 0
        try:
            queued = await sweep_head(self._pipeline, self._pool, self._forge, head)
        except (GitError, PermanentForgeError) as err:
            log_event(
                log,
                "head_not_swept",
                level=logging.WARNING,
                repository=head.repo.name,
                error=str(err),
            )
            return 0, 0
        if queued:
            self._metrics.reconcile_heads_swept.inc()
            self._wake_up.poke()
            log_event(log, "head_swept", repository=head.repo.name, branch=head.default_branch)
        return 0, int(queued)

    async def _redeliver(self, hook: Hook, since: datetime) -> int:
        candidates = missed(await self._deliveries.attempts(hook, since), HANDLED_EVENTS)
        known = await self._known({attempt.guid for attempt in candidates})
        count = 0
        for attempt in candidates:
            if attempt.guid not in known and await self._ask(hook, attempt):
                count += 1
        return count

    async def _ask(self, hook: Hook, attempt: Attempt) -> bool:
        """Redeliver once: the GUID is claimed first, and released only when GitHub could not
        be asked now (so a later run asks again); a refusal for good keeps it claimed."""
        async with self._engine.begin() as connection:
            claimed = await connection.scalar(
                insert(Redelivery)
                .values(guid=attempt.guid, attempt_id=attempt.id, hook=hook.name)
                .on_conflict_do_nothing()
                .returning(Redelivery.guid)
            )
        if claimed is None:
            return False
        try:
            await self._deliveries.redeliver(hook, attempt)
        except TransientForgeError:
            async with self._engine.begin() as connection:
                await connection.execute(delete(Redelivery).where(Redelivery.guid == attempt.guid))
            raise
        except PermanentForgeError as err:
            log_event(
                log, "redelivery_refused", level=logging.WARNING, guid=attempt.guid, error=str(err)
            )
            return False
        self._metrics.reconcile_deliveries_recovered.inc()
        log_event(
            log,
            "delivery_redelivered",
            guid=attempt.guid,
            github_event=attempt.event,
            hook=hook.name,
            delivered_at=attempt.delivered_at.isoformat(),
        )
        return True

    async def _known(self, guids: set[str]) -> set[str]:
        """The GUIDs that were stored, or asked for before."""
        if not guids:
            return set()
        query = union(
            select(Delivery.id).where(Delivery.forge == self._forge.host, Delivery.id.in_(guids)),
            select(Redelivery.guid).where(Redelivery.guid.in_(guids)),
        )
        async with self._engine.connect() as connection:
            return set((await connection.execute(query)).scalars())

    @contextlib.asynccontextmanager
    async def _lock(self) -> AsyncIterator[bool]:
        """Whether this replica holds the reconcile lock (held for the run, on one session)."""
        async with self._engine.connect() as connection:
            held = bool(
                await connection.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": RECONCILE_LOCK_KEY}
                )
            )
            await connection.commit()
            try:
                yield held
            finally:
                if held:
                    await connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": RECONCILE_LOCK_KEY}
                    )
                    await connection.commit()


def stall_bound(interval: float, first_delay: float = FIRST_RUN_DELAY) -> float:
    """Seconds between two ended runs after which reconciling counts as stuck: the wait
    before a run (the first delay, then the interval) and `RUN_ALLOWANCE` for the run."""
    return max(interval, first_delay) + RUN_ALLOWANCE


async def reconcile_forever(
    reconciler: Reconciler,
    health: Health,
    *,
    interval: float,
    first_delay: float = FIRST_RUN_DELAY,
) -> None:
    """The background task: a run `first_delay` after start, then one every `interval`
    seconds; a failed run is logged and counted, and the loop goes on. Each ended run beats
    `RECONCILED` (expected within `stall_bound` from the task's start)."""
    health.expect(RECONCILED, stall_bound(interval, first_delay))
    await asyncio.sleep(first_delay)
    while True:
        await reconciler.run_logged()
        health.beat(RECONCILED)
        await asyncio.sleep(interval)
