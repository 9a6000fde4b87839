"""Access tokens: HS256 JSON Web Tokens with a subject and an expiry (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"
LIFETIME = timedelta(minutes=30)


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why, for the logs (never the token)."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


def issue_token(subject: str, key: str, now: datetime) -> IssuedToken:
    """A token for `subject` valid for `LIFETIME` from `now` (timezone-aware)."""
    expires_at = now + LIFETIME
    token = jwt.encode({"sub": subject, "exp": expires_at}, key, algorithm=ALGORITHM)
    return IssuedToken(token, expires_at)


def verify_token(token: str, key: str) -> str:
    """The subject of a valid token; `InvalidToken` for anything else.

    Only HS256 is accepted, so `alg: none` and tokens of other algorithms fail
    like a wrong signature does.
    """
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.InvalidTokenError as err:
        raise InvalidToken(type(err).__name__) from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("subject is not a name")
    return subject
