"""Supervised background tasks, and the health registry `/readyz` reads.

Every task that lives as long as the process (worker slots, the job listener,
lease renewal, the wake-up, the workflow follower) runs through one
`Supervisor`: an exception is logged with its traceback and the task is started
again after a backoff, so a database blip never silently removes one. While a
task waits for its restart it is *down* in the `Health` registry; a task may
also promise a heartbeat (the worker: "the job queue was polled") that is
*stale* once it has not beaten within its bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from ogdc_hooks.jobs.backoff import retry_delay

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[None]]


@dataclass
class Health:
    """Which supervised tasks are down, and which heartbeats are overdue."""

    clock: Callable[[], float] = time.monotonic
    _down: dict[str, str] = field(default_factory=dict)
    _beats: dict[str, tuple[float, float]] = field(default_factory=dict)  # last beat, bound

    def down(self, name: str, reason: str) -> None:
        self._down[name] = reason

    def up(self, name: str) -> None:
        self._down.pop(name, None)

    def expect(self, name: str, within: float) -> None:
        """From now on `name` must beat at least every `within` seconds."""
        self._beats[name] = (self.clock(), within)

    def beat(self, name: str) -> None:
        if name in self._beats:
            self._beats[name] = (self.clock(), self._beats[name][1])

    def forget(self, name: str) -> None:
        self._down.pop(name, None)
        self._beats.pop(name, None)

    def problems(self) -> list[str]:
        """What is wrong, in words for `/readyz`; empty when all is well."""
        now = self.clock()
        found = [
            f"{name} stopped ({reason}) and is being restarted"
            for name, reason in sorted(self._down.items())
        ]
        found += [
            f"{name} has not happened for {now - last:.0f} s (at most {within:.0f} s expected)"
            for name, (last, within) in sorted(self._beats.items())
            if now - last > within
        ]
        return found


@dataclass
class Supervisor:
    """Runs named tasks until cancelled, restarting each one that raises or returns."""

    health: Health = field(default_factory=Health)
    restart_base: float = 0.5
    restart_cap: float = 10.0
    stable_after: float = 60.0  # a task that ran this long before failing starts its backoff over

    async def _keep(self, name: str, work: Work) -> None:
        loop = asyncio.get_running_loop()
        myself = asyncio.current_task()
        assert myself is not None
        failures = 0
        while True:
            started = loop.time()
            try:
                await work()
                raise RuntimeError(f"{name} returned; background tasks run until stopped")
            except (Exception, asyncio.CancelledError) as err:
                if isinstance(err, asyncio.CancelledError) and myself.cancelling():
                    raise  # stopped by `running`; any other cancellation is a failure
                failures = 1 if loop.time() - started > self.stable_after else failures + 1
                delay = retry_delay(failures, base=self.restart_base, cap=self.restart_cap)
                self.health.down(name, type(err).__name__)
                log.error(
                    "background_task_failed",
                    exc_info=True,
                    extra={"fields": {"task": name, "restart_in": round(delay, 2)}},
                )
            await asyncio.sleep(delay)
            self.health.up(name)
            log.info("background_task_restarted", extra={"fields": {"task": name}})

    @contextlib.asynccontextmanager
    async def running(self, works: Mapping[str, Work]) -> AsyncIterator[None]:
        """Run `works` (by name) for the life of the block; leaving it stops them."""
        tasks = [
            asyncio.create_task(self._keep(name, work), name=f"ogdc-{name}")
            for name, work in works.items()
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for name in works:
                self.health.forget(name)
