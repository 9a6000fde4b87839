"""Slowing down password guessing: a sliding window of failed logins per key.

Keys are a user name and a client address. A key with `limit` failures in
the last `window` seconds is refused until the oldest of them leaves the
window. An attempt counts as a failure from the moment it is admitted and is
forgiven when it succeeds, so a burst of parallel guesses cannot slip in
before the first failure is recorded. Logins for one user name take turns,
at most as many at once as the limit allows (`turn`), so that a user's own
parallel logins wait rather than count against each other.

The state lives in the process: each replica throttles on its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """At most `failures` failed logins in `window` seconds."""

    failures: int
    window: float


class LoginThrottle:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._max_keys = max_keys
        # key -> its semaphore and how many hold or wait for it; gone when nobody does
        self._turns: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def turn(self, key: str, limit: Limit) -> AsyncIterator[None]:
        """Wait until fewer than `limit.failures` attempts for `key` are under way."""
        turns, holders = self._turns.get(key, (asyncio.Semaphore(limit.failures), 0))
        self._turns[key] = (turns, holders + 1)
        try:
            async with turns:
                yield
        finally:
            turns, holders = self._turns[key]
            if holders == 1:
                del self._turns[key]
            else:
                self._turns[key] = (turns, holders - 1)

    def _recent(self, key: str, limit: Limit, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - limit.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def admit(self, keys: Sequence[tuple[str, Limit]], now: float) -> float:
        """0 when the attempt may go ahead (it is then counted as failed until
        `forgive`), else the seconds to wait."""
        wait = 0.0
        for key, limit in keys:
            times = self._recent(key, limit, now)
            if len(times) >= limit.failures:
                wait = max(wait, times[0] + limit.window - now)
        if wait > 0:
            return wait
        for key, _ in keys:
            if key not in self._failures and len(self._failures) >= self._max_keys:
                # Bounded memory: forget the key that was first seen longest ago.
                del self._failures[next(iter(self._failures))]
            self._failures.setdefault(key, deque()).append(now)
        return 0.0

    def forgive(self, keys: Sequence[str], at: float, *, clear: Sequence[str] = ()) -> None:
        """Take back the attempt admitted at `at` (it succeeded); forget `clear` keys entirely."""
        for key in keys:
            times = self._failures.get(key)
            if times is not None and at in times:
                times.remove(at)
                if not times:
                    del self._failures[key]
        for key in clear:
            self._failures.pop(key, None)
