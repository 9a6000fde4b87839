"""What a failed Forgejo request means for the retrying queue: try again later, or give up.

Pure. Forgejo itself has no API rate limiter; instances such as Codeberg put a proxy
in front that answers 429, usually with `Retry-After`. So: 5xx, 408 and 429 are worth
retrying (after `Retry-After` when given, a minute after a 429 without one), anything
else (401 bad token, 403 missing scope or access, 404, 422 validation) is not.
"""

from __future__ import annotations

from collections.abc import Mapping

from ogdc_hooks.jobs.backoff import retry_after_seconds
from ogdc_hooks.jobs.errors import PermanentError, TransientError

RATE_LIMIT_WAIT = 60.0  # a 429 without Retry-After


class ForgejoUnavailable(TransientError):
    """Forgejo unreachable now (network, timeout, 5xx, rate limit); retry after `retry_after`."""


class ForgejoRefused(PermanentError):
    """Forgejo refused the request for good; `status` is its HTTP answer, when it gave one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def classify(
    label: str, status: int, headers: Mapping[str, str], message: str, *, now: float
) -> ForgejoUnavailable | ForgejoRefused:
    """The error to raise for an answer of `label` (e.g. "Forgejo at codeberg.org") that is
    not 2xx; `message` is Forgejo's own (its `message` field), already redacted."""
    text = f"{label} answered {status}: {message}" if message else f"{label} answered {status}"
    retry_after = retry_after_seconds(headers.get("Retry-After"), now=now)
    if status >= 500 or status == 408:
        return ForgejoUnavailable(text, retry_after)
    if status == 429:
        return ForgejoUnavailable(text, RATE_LIMIT_WAIT if retry_after is None else retry_after)
    return ForgejoRefused(text, status)
