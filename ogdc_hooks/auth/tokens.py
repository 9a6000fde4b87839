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


def _verify(token: str, key: str) -> tuple[str, float]:
    """The subject and expiry of a valid token; `InvalidToken` for anything else.

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
    return subject, float(claims["exp"])


class TokenVerifier:
    """Verifies tokens signed with one key, remembering those it has verified.

    Every authenticated request presents a token, usually one seen before:
    a remembered token only has its expiry checked again, which saves the
    parsing and the HMAC. At most `max_entries` tokens are remembered.
    """

    def __init__(self, key: str, max_entries: int = 10_000) -> None:
        self._key = key
        self._max_entries = max_entries
        self._verified: dict[str, tuple[str, float]] = {}

    def subject(self, token: str, now: float) -> str:
        """The subject of `token` if it is valid at `now` (a POSIX timestamp)."""
        known = self._verified.get(token)
        if known is None:
            known = _verify(token, self._key)
            if len(self._verified) >= self._max_entries:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = known
        subject, expires = known
        if now >= expires:  # as PyJWT decides: expired from the second `exp` names
            del self._verified[token]
            raise InvalidToken("ExpiredSignatureError")
        return subject
