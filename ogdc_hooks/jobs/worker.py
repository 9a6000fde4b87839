"""The worker: claims jobs, runs their handler under a lease, retries or gives up.

Each process runs one `Worker` made of supervised tasks (`tasks()`): a few
concurrent slots, a listener and the lease renewal. Slots sleep on PostgreSQL
LISTEN/NOTIFY (so a new job starts within milliseconds) and wake at least
every `poll_interval` for retries that came due and leases that ran out.

A handler runs only while its lease is known to be ours: when renewal cannot
prove it (the job was taken over, or the database stayed away until the lease
ran out) the handler is stopped, so no job ever runs twice at once. A slot
whose bookkeeping fails (the database went away after the handler) raises to
its supervisor; the job is left to its lease and taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ogdc_hooks.jobs import queue
from ogdc_hooks.jobs.backoff import retry_delay
from ogdc_hooks.jobs.errors import Deferred, PermanentError, TransientError
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.jobs.supervise import Health, Supervisor, Work

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[None]]
GiveUp = Callable[[Job, str], Awaitable[None]]

QUEUE_POLLED = "the worker's polling of the job queue"
POISON_CRASHES = 2  # takeovers from dead workers after which a job is not run again
POISONED = (
    "the job crashed the worker running it twice (the process died both times) and was "
    "stopped, so that it cannot crash another; re-run it once the cause is found"
)
HAND_BACK_SECONDS = 5.0  # how long a stopping worker tries to hand back its jobs


@dataclass
class Worker:
    """Runs `handlers[job.kind]` for claimed jobs; `give_up[job.kind]` when a job fails for good.

    `record(kind, outcome)` hears how each execution ended: done, deferred, retried or failed.
    """

    engine: AsyncEngine
    handlers: Mapping[str, Handler]
    give_up: Mapping[str, GiveUp] = field(default_factory=dict)
    slots: int = 4
    per_repository: int = 2**31 - 1  # jobs of one repository running at once (queue.claim)
    lease: float = 60.0
    poll_interval: float = 2.0
    backoff: Callable[[int, float | None], float] = lambda attempt, retry_after: retry_delay(
        attempt, retry_after=retry_after
    )
    record: Callable[[str, str], None] = lambda kind, outcome: None
    health: Health = field(default_factory=Health)
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _started: asyncio.Event = field(default_factory=asyncio.Event)
    _held: dict[int, asyncio.Timeout] = field(default_factory=dict)  # job id -> its lease
    _listening: bool = False
    _asleep: int = 0

    @property
    def stale_after(self) -> float:
        """Seconds without a claim or a renewal after which the worker counts as stuck."""
        return max(30.0, self.lease)

    @property
    def idle(self) -> bool:
        """Listening, and every slot asleep: only a notification or the poll wakes it."""
        return self._listening and self._asleep == self.slots

    def tasks(self) -> dict[str, Work]:
        """The worker's background tasks by name, for a `Supervisor` to run."""
        self.health.expect(QUEUE_POLLED, self.stale_after)
        slots: dict[str, Work] = {f"worker slot {n}": self._slot for n in range(1, self.slots + 1)}
        return {"job listener": self._listen, "lease renewal": self._keep_leases, **slots}

    async def run(self) -> None:
        """Work under a supervisor of its own until cancelled (running jobs are handed back)."""
        async with Supervisor(self.health).running(self.tasks()):
            await asyncio.Event().wait()

    async def _listen(self) -> None:
        """LISTEN on a dedicated connection until it is lost (then raise, to be restarted)."""
        connection = await self.engine.connect()
        try:
            driver: Any = (await connection.get_raw_connection()).driver_connection
            lost = asyncio.Event()
            driver.add_termination_listener(lambda _: lost.set())
            await driver.add_listener(queue.NOTIFY_CHANNEL, self._notified)
            self._listening = True
            self._started.set()
            self._wake.set()  # jobs enqueued while nobody listened are claimed now
            await lost.wait()
            raise ConnectionError("the connection the worker listens for new jobs on was lost")
        finally:
            self._listening = False
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _slot(self) -> None:
        loop = asyncio.get_running_loop()
        await self._started.wait()  # the listener's first LISTEN: no notification is missed
        while True:
            # The database starts the lease after this moment: a deadline that cannot be late.
            deadline = loop.time() + self.lease * 0.9
            job = await queue.claim(self.engine, self.name, self.lease, self.per_repository)
            self.health.beat(QUEUE_POLLED)
            if job is None:
                await self._sleep()
            elif job.crashes >= POISON_CRASHES:
                log.error("job %s %s crashed its worker twice; giving up", job.id, job.kind)
                await self._give_up(job, POISONED)
            else:
                await self._execute(job, deadline)

    async def _sleep(self) -> None:
        self._wake.clear()
        timeout = self.poll_interval
        with contextlib.suppress(Exception):
            ready = await queue.next_ready_at(self.engine)
            if ready is not None:
                timeout = min(timeout, max(0.0, (ready - datetime.now(UTC)).total_seconds()))
        self._asleep += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        finally:
            self._asleep -= 1

    async def _execute(self, job: Job, deadline: float) -> None:
        """Run the handler while the lease holds, then record the outcome."""
        lease = asyncio.timeout_at(deadline)
        self._held[job.id] = lease
        try:
            async with lease:
                error = await self._run_handler(job)
        except TimeoutError:  # the handler's own errors are caught: this is the lease
            log.warning("job %s %s lost its lease and was stopped", job.id, job.kind)
            return
        except asyncio.CancelledError:
            await self._hand_back(job)
            raise
        finally:
            del self._held[job.id]
        await self._settle(job, error)

    async def _run_handler(self, job: Job) -> Exception | None:
        """What the handler raised (a crash is logged with its traceback), or None."""
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise PermanentError(f"no handler for job kind {job.kind!r}")
            await handler(job)
        except (TransientError, PermanentError) as err:
            return err
        except Exception as err:  # a bug: keep a trace in the server log, retry like a transient
            log.exception("job %s %s crashed", job.id, job.kind)
            return err
        return None

    async def _settle(self, job: Job, error: Exception | None) -> None:
        """The bookkeeping; if it raises, the job is left to its lease and taken over."""
        if error is None:
            await queue.finish(self.engine, job, self.name)
            self.record(job.kind, "done")
        elif isinstance(error, Deferred):
            log.info("job %s %s deferred %.1fs: %s", job.id, job.kind, error.retry_after, error)
            await queue.retry_later(
                self.engine, job, self.name, error.retry_after, str(error), count_attempt=False
            )
            self.record(job.kind, "deferred")
        elif isinstance(error, TransientError):
            await self._retry_or_give_up(job, str(error), error.retry_after)
        elif isinstance(error, PermanentError):
            log.warning("job %s %s failed: %s", job.id, job.kind, error)
            await self._give_up(job, str(error))
        else:
            await self._retry_or_give_up(job, f"internal error: {type(error).__name__}", None)

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

    async def _hand_back(self, job: Job) -> None:
        """The worker stops: give the job back at once, or leave it to its lease."""
        try:
            async with asyncio.timeout(HAND_BACK_SECONDS):
                await queue.release(self.engine, job, self.name)
        except Exception:
            log.warning("job %s could not be handed back; left to its lease", job.id)

    async def _keep_leases(self) -> None:
        """Renew the leases of running jobs; stop the handler of any that is no longer ours.

        Renews at once when (re)started with jobs running, then every third of a lease.
        """
        loop = asyncio.get_running_loop()
        while True:
            if self._held:
                sent, held = loop.time(), dict(self._held)
                kept = await queue.renew(self.engine, self.name, self.lease, list(held))
                self.health.beat(QUEUE_POLLED)
                for job_id, lease in held.items():
                    if self._held.get(job_id) is not lease or lease.expired():
                        continue  # finished (or stopped) meanwhile
                    if job_id in kept:
                        lease.reschedule(sent + self.lease * 0.9)
                    else:
                        log.warning("job %s was taken over by another worker", job_id)
                        lease.reschedule(loop.time())
            await asyncio.sleep(self.lease / 3)
