"""Pacing writes to a forge: a budget of requests per sliding window, kept in the database.

GitHub's secondary rate limits allow "no more than 80 content-generating requests
per minute and no more than 500 content-generating requests per hour"
(https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
#about-secondary-rate-limits), and an integration that keeps going past them may
be banned. So a write is sent only when the ledger (`forge_writes`) has room for
it in every window; otherwise `take` raises `Deferred` with the time until it
will, and the job queue runs the job again then: nothing sleeps, one
installation's spent budget holds up no other, and the ledger is shared by every
replica and survives restarts.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ogdc_hooks.jobs.errors import Deferred

Window = tuple[int, float]  # (at most this many writes, in any span of this many seconds)

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:bucket))")
# Rows older than the longest window count for nothing; a few go with every write, skipping
# those another transaction is deleting (so no two deletions wait for each other).
_FORGET = text(
    "DELETE FROM forge_writes WHERE id IN (SELECT id FROM forge_writes"
    " WHERE at < now() - make_interval(secs => :horizon) LIMIT 100 FOR UPDATE SKIP LOCKED)"
)
_AGES = text(
    "SELECT extract(epoch FROM now() - at) FROM forge_writes WHERE bucket = :bucket"
    " AND at > now() - make_interval(secs => :horizon) ORDER BY at DESC LIMIT :most"
)
_RECORD = text("INSERT INTO forge_writes (bucket) VALUES (:bucket)")


def wait_for_room(ages: Sequence[float], windows: Sequence[Window]) -> float:
    """Seconds until one more write fits every window, given the ages (seconds, newest
    first) of the writes made; 0 when it fits now. Pure."""
    wait = 0.0
    for most, seconds in windows:
        if most <= 0:
            raise ValueError("a write budget allows at least one write")
        if len(ages) >= most and ages[most - 1] < seconds:
            wait = max(wait, seconds - ages[most - 1])
    return wait


class WriteBudget:
    """Writes per bucket (e.g. one GitHub installation) within `windows`."""

    def __init__(self, engine: AsyncEngine, windows: Sequence[Window]) -> None:
        self.engine = engine
        self.windows = tuple(windows)

    async def take(self, bucket: str, what: str = "a write") -> None:
        """Record one write for `bucket` now, or raise `Deferred` until one fits."""
        horizon = max(seconds for _, seconds in self.windows)
        most = max(count for count, _ in self.windows)
        async with self.engine.begin() as connection:
            await connection.execute(_LOCK, {"bucket": bucket})
            await connection.execute(_FORGET, {"horizon": horizon})
            ages = [
                float(age)
                for age in (
                    await connection.execute(
                        _AGES, {"bucket": bucket, "horizon": horizon, "most": most}
                    )
                ).scalars()
            ]
            wait = wait_for_room(ages, self.windows)
            if wait > 0:
                limits = ", ".join(f"{count} in {seconds:g}s" for count, seconds in self.windows)
                raise Deferred(
                    f"{what} waits {wait:.1f}s for the write budget of {bucket} ({limits})",
                    retry_after=wait,
                )
            await connection.execute(_RECORD, {"bucket": bucket})
