"""How a job handler says what went wrong: worth retrying, or not."""

from __future__ import annotations


class TransientError(Exception):
    """Worth retrying later (network, 5xx, 429, a service down); `retry_after` is a floor."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying cannot help (bad request, missing commit, refused credentials)."""


class Deferred(TransientError):
    """Not now, and not a failure: run again in `retry_after` seconds, without counting an
    attempt (e.g. a forge's write budget is spent for the moment)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after)
        self.retry_after: float = retry_after
