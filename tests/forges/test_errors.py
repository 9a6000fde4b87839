"""What a failed GitHub answer means for the queue (pure)."""

from __future__ import annotations

import pytest

from ogdc_hooks.forges.github.errors import (
    PermanentForgeError,
    TransientForgeError,
    classify,
)
from ogdc_hooks.jobs.errors import PermanentError, TransientError

NOW = 1_800_000_000.0


def transient(status: int, headers: dict[str, str], message: str = "") -> float | None:
    error = classify(status, headers, message, now=NOW)
    assert isinstance(error, TransientForgeError)
    assert isinstance(error, TransientError)  # the job queue retries it
    return error.retry_after


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_retried(status: int) -> None:
    assert transient(status, {}) is None


def test_a_503_with_retry_after_is_retried_then() -> None:
    assert transient(503, {"Retry-After": "12"}) == 12


def test_429_waits_as_long_as_retry_after_says() -> None:
    assert transient(429, {"Retry-After": "7"}) == 7


def test_retry_after_may_be_an_http_date() -> None:
    assert transient(429, {"retry-after": "Fri, 15 Jan 2027 08:00:40 GMT"}) == pytest.approx(
        1_800_000_040.0 - NOW
    )


def test_exhausted_primary_limit_waits_for_the_reset() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 1234)}
    assert transient(403, headers, "API rate limit exceeded for installation ID 77.") == 1234
    assert transient(429, headers) == 1234


def test_secondary_limit_honours_retry_after_else_waits_a_minute() -> None:
    message = "You have exceeded a secondary rate limit. Please wait a few minutes."
    remaining = {"X-RateLimit-Remaining": "4000", "X-RateLimit-Reset": str(int(NOW) + 999)}
    assert transient(403, {"Retry-After": "30", **remaining}, message) == 30
    assert transient(403, remaining, message) == 60
    assert transient(429, {}) == 60


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "Resource not accessible by integration"),
        (401, "Bad credentials"),
        (404, "Not Found"),
        (422, "Validation Failed: 'description is too long (maximum is 140 characters)'"),
    ],
)
def test_other_client_errors_are_permanent_and_keep_githubs_message(
    status: int, message: str
) -> None:
    error = classify(status, {"X-RateLimit-Remaining": "4999"}, message, now=NOW)
    assert isinstance(error, PermanentForgeError)
    assert isinstance(error, PermanentError)
    assert error.status == status
    assert str(error) == f"GitHub answered {status}: {message}"
