"""When to try a failed job again: exponential backoff with full jitter, capped."""

from __future__ import annotations

import random


def retry_delay(
    attempt: int,
    *,
    base: float = 2.0,
    cap: float = 600.0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1`.

    Full jitter (a uniform draw below the exponential bound) spreads the retries
    of many jobs that failed together, e.g. during a GitHub outage. A server's
    `Retry-After` is a floor: retrying earlier would only be refused again.
    """
    bound = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = (rng or random).uniform(bound / 2, bound)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap * 6))
    return delay
