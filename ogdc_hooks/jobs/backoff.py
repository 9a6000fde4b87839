"""When to try a failed job again: exponential backoff with full jitter, capped."""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime


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


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """An HTTP `Retry-After` value (seconds, or an HTTP date) as seconds from `now` (a Unix
    time); None when absent or unreadable (RFC 9110 section 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)
