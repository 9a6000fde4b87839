"""What a failed GitHub request means for the retrying queue: try again later, or give up.

Pure: `classify` reads a status code, the headers and GitHub's message, and
returns the error to raise, following GitHub's rules for rate limits: after a
primary limit wait for `X-RateLimit-Reset`; after a secondary limit honour
`Retry-After`, else the reset, else at least a minute.
"""

from __future__ import annotations

from collections.abc import Mapping

from ogdc_hooks.jobs.backoff import retry_after_seconds
from ogdc_hooks.jobs.errors import PermanentError, TransientError

SECONDARY_LIMIT_WAIT = 60.0  # GitHub: "wait for at least one minute before retrying"


class TransientForgeError(TransientError):
    """GitHub unreachable now (network, timeout, 5xx, rate limit); retry after `retry_after`."""


class PermanentForgeError(PermanentError):
    """GitHub refused the request for good (validation, missing repository, bad credentials)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _reset_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    value = _header(headers, "x-ratelimit-reset")
    try:
        return max(1.0, float(value) - now) if value is not None else None
    except ValueError:
        return None


def _limit_exhausted(headers: Mapping[str, str]) -> bool:
    return (_header(headers, "x-ratelimit-remaining") or "").strip() == "0"


def _is_secondary_limit(message: str) -> bool:
    lowered = message.lower()
    return "secondary rate limit" in lowered or "abuse" in lowered


def classify(
    status: int, headers: Mapping[str, str], message: str, *, now: float
) -> TransientForgeError | PermanentForgeError:
    """The error to raise for a GitHub answer with this status (not 2xx)."""
    text = f"GitHub answered {status}: {message}" if message else f"GitHub answered {status}"
    retry_after = retry_after_seconds(_header(headers, "retry-after"), now=now)
    if status >= 500 or status == 408:
        return TransientForgeError(text, retry_after)
    rate_limited = status == 429 or (
        status == 403 and (_limit_exhausted(headers) or _is_secondary_limit(message))
    )
    if rate_limited:
        if retry_after is None and _limit_exhausted(headers):
            retry_after = _reset_seconds(headers, now=now)
        if retry_after is None:
            retry_after = SECONDARY_LIMIT_WAIT
        return TransientForgeError(text, retry_after)
    return PermanentForgeError(text, status)
