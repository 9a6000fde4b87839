"""Waking the workers after intake, at most once per short interval.

A NOTIFY in every intake transaction serializes commits on PostgreSQL's
notification queue lock: under a burst of deliveries that costs more than the
inserts. Intake pokes a `WakeUp` instead; it sends one NOTIFY for all the
deliveries stored in the last `interval` seconds, so workers still start
within milliseconds.
"""

from __future__ import annotations

import asyncio

import asyncpg

from ogdc_hooks.jobs.queue import NOTIFY_CHANNEL


class WakeUp:
    def __init__(self, pool: asyncpg.Pool, interval: float = 0.01) -> None:
        self._pool = pool
        self._interval = interval
        self._poked = asyncio.Event()

    def poke(self) -> None:
        """Some job was stored; the workers will hear of it shortly."""
        self._poked.set()

    async def run(self) -> None:
        """Send the coalesced notifications until cancelled (run it supervised).

        A notification that fails leaves the poke set, so the restarted task
        sends it; workers poll as well, so a lost one only delays a job.
        """
        while True:
            await self._poked.wait()
            self._poked.clear()
            try:
                await self._pool.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
            except BaseException:
                self._poked.set()
                raise
            await asyncio.sleep(self._interval)
