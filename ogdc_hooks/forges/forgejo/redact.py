"""Last line of defence for text sent to or read from Forgejo: `ogdc_hooks.redact` with the
shapes a Forgejo answer or error can carry its credentials in.

Forgejo's access tokens are 40 hexadecimal characters, the shape of a commit SHA, so they
are masked as the known secret they are, never by their shape.
"""

from __future__ import annotations

from collections.abc import Iterable

from ogdc_hooks.redact import (
    AUTHORIZATION,
    BEARER,
    JWT,
    PEM_KEY,
    URL_CREDENTIALS,
    Pattern,
    Redactor,
)

MARK = "[redacted]"

_PATTERNS: tuple[Pattern, ...] = (
    (PEM_KEY, MARK),
    (JWT, MARK),
    (AUTHORIZATION, rf"\1{MARK}"),
    (BEARER, rf"\1{MARK}"),
    (URL_CREDENTIALS, rf"\1{MARK}@"),
)
_REDACTOR = Redactor(_PATTERNS, MARK)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known `secrets` and credential-looking strings replaced by a marker."""
    return _REDACTOR(text, secrets)
