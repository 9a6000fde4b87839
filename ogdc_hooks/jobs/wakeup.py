"""Waking the workers after intake, at most once per short interval.

A NOTIFY in every intake transaction serializes commits on PostgreSQL's
notification queue lock: under a burst of deliveries that costs more than the
inserts. Intake pokes a `WakeUp` instead; it sends one NOTIFY for all the
deliveries stored in the last `interval` seconds, so workers still start
within milliseconds.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from ogdc_hooks.jobs.queue import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class WakeUp:
    def __init__(self, pool: asyncpg.Pool, interval: float = 0.01) -> None:
        self._pool = pool
        self._interval = interval
        self._poked = asyncio.Event()

    def poke(self) -> None:
        """Some job was stored; the workers will hear of it shortly."""
        self._poked.set()

    async def run(self) -> None:
        """Send the coalesced notifications until cancelled."""
        while True:
            await self._poked.wait()
            self._poked.clear()
            try:
                await self._pool.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
            except (OSError, asyncpg.PostgresError) as err:
                # Workers poll as well: a lost wake-up delays a job, it never loses one.
                log.warning("could not notify workers: %s", err)
            await asyncio.sleep(self._interval)
