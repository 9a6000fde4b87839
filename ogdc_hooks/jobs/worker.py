"""The worker: claims jobs, runs their handler, renews the lease, retries or gives up.

Each process runs one `Worker` with a few concurrent slots. Workers sleep on
PostgreSQL LISTEN/NOTIFY (so a new job starts within milliseconds) and wake at
least every `poll_interval` for retries that came due and leases that ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ogdc_hooks.jobs import queue
from ogdc_hooks.jobs.backoff import retry_delay
from ogdc_hooks.jobs.errors import PermanentError, TransientError
from ogdc_hooks.jobs.queue import Job

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[None]]
GiveUp = Callable[[Job, str], Awaitable[None]]


@dataclass
class Worker:
    """Runs `handlers[job.kind]` for claimed jobs; `give_up[job.kind]` when a job fails for good.

    `record(kind, outcome)` hears how each execution ended: done, retried or failed.
    """

    engine: AsyncEngine
    handlers: Mapping[str, Handler]
    give_up: Mapping[str, GiveUp] = field(default_factory=dict)
    slots: int = 4
    lease: float = 60.0
    poll_interval: float = 2.0
    backoff: Callable[[int, float | None], float] = lambda attempt, retry_after: retry_delay(
        attempt, retry_after=retry_after
    )
    record: Callable[[str, str], None] = lambda kind, outcome: None
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Work until cancelled; cancelling lets running jobs be taken over after their lease."""
        async with self._listening():
            await asyncio.gather(*(self._slot() for _ in range(self.slots)))

    @contextlib.asynccontextmanager
    async def _listening(self) -> AsyncIterator[None]:
        """LISTEN on a dedicated connection so enqueued jobs wake us at once."""
        connection = await self.engine.connect()
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.add_listener(queue.NOTIFY_CHANNEL, self._notified)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await driver.remove_listener(queue.NOTIFY_CHANNEL, self._notified)
            await connection.close()

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _slot(self) -> None:
        while True:
            try:
                job = await queue.claim(self.engine, self.name, self.lease)
            except Exception:  # database away: wait and try again, never die
                log.warning("job claim failed; retrying", exc_info=True)
                await asyncio.sleep(self.poll_interval)
                continue
            if job is None:
                await self._sleep()
                continue
            await self._execute(job)

    async def _sleep(self) -> None:
        self._wake.clear()
        timeout = self.poll_interval
        with contextlib.suppress(Exception):
            ready = await queue.next_ready_at(self.engine)
            if ready is not None:
                timeout = min(timeout, max(0.0, (ready - datetime.now(UTC)).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _execute(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        renewer = asyncio.create_task(self._renew(job))
        try:
            if handler is None:
                raise PermanentError(f"no handler for job kind {job.kind!r}")
            await handler(job)
        except TransientError as err:
            await self._retry_or_give_up(job, str(err), err.retry_after)
        except PermanentError as err:
            log.warning("job %s %s failed: %s", job.id, job.kind, err)
            await self._give_up(job, str(err))
        except Exception as err:  # a bug: keep a trace in the server log, retry like a transient
            log.exception("job %s %s crashed", job.id, job.kind)
            await self._retry_or_give_up(job, f"internal error: {type(err).__name__}", None)
        else:
            await queue.finish(self.engine, job, self.name)
            self.record(job.kind, "done")
        finally:
            renewer.cancel()

    async def _retry_or_give_up(self, job: Job, error: str, retry_after: float | None) -> None:
        if job.attempts >= job.max_attempts:
            await self._give_up(job, f"{error} (gave up after {job.attempts} attempts)")
            return
        delay = self.backoff(job.attempts, retry_after)
        log.info("job %s %s will retry in %.1fs: %s", job.id, job.kind, delay, error)
        await queue.retry_later(self.engine, job, self.name, delay, error)
        self.record(job.kind, "retried")

    async def _give_up(self, job: Job, error: str) -> None:
        hook = self.give_up.get(job.kind)
        if hook is not None:
            try:
                await hook(job, error)
            except Exception:
                log.exception("give-up hook of job %s failed; will retry", job.id)
                await queue.retry_later(self.engine, job, self.name, self.poll_interval, error)
                self.record(job.kind, "retried")
                return
        await queue.fail(self.engine, job, self.name, error)
        self.record(job.kind, "failed")

    async def _renew(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            with contextlib.suppress(Exception):
                if not await queue.renew(self.engine, job, self.name, self.lease):
                    log.warning("job %s was taken over by another worker", job.id)
                    return
