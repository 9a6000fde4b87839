"""Access tokens: HS256 JSON Web Tokens with a subject and an expiry (pure, no I/O).

A token names its user three ways: by name (`sub`), by row id (`uid`) and by
token version (`ver`). The id dies with the user, so a user deleted and
created again under the same name does not inherit old tokens; the version
moves on with every password change, which ends the tokens issued before it.
"""

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


@dataclass(frozen=True)
class Subject:
    """Whom a token was issued to: the user's name, row id and token version then."""

    name: str
    user_id: int
    version: int


def issue_token(subject: Subject, key: str, now: datetime) -> IssuedToken:
    """A token for `subject` valid for `LIFETIME` from `now` (timezone-aware)."""
    expires_at = now + LIFETIME
    claims = {"sub": subject.name, "uid": subject.user_id, "ver": subject.version}
    token = jwt.encode({**claims, "exp": expires_at}, key, algorithm=ALGORITHM)
    return IssuedToken(token, expires_at)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _verify(token: str, key: str) -> tuple[Subject, float]:
    """The subject and expiry of a valid token; `InvalidToken` for anything else.

    Only HS256 is accepted, so `alg: none` and tokens of other algorithms fail
    like a wrong signature does.
    """
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["sub", "uid", "ver", "exp"]}
        )
    except jwt.InvalidTokenError as err:
        raise InvalidToken(type(err).__name__) from None
    name, user_id, version = claims["sub"], claims["uid"], claims["ver"]
    if not isinstance(name, str) or not name:
        raise InvalidToken("subject is not a name")
    if not _whole(user_id) or not _whole(version):
        raise InvalidToken("user id or token version is not a whole number")
    return Subject(name, user_id, version), float(claims["exp"])


class TokenVerifier:
    """Verifies tokens signed with one key, remembering those it has verified.

    Every authenticated request presents a token, usually one seen before:
    a remembered token only has its expiry checked again, which saves the
    parsing and the HMAC. At most `max_entries` tokens are remembered.
    """

    def __init__(self, key: str, max_entries: int = 10_000) -> None:
        self._key = key
        self._max_entries = max_entries
        self._verified: dict[str, tuple[Subject, float]] = {}

    def subject(self, token: str, now: float) -> Subject:
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
