"""Slowing down password guessing, with the counts in PostgreSQL so every replica shares them.

Every login attempt is recorded as a failure (`login_failures`: user name,
client address, time) when it is admitted, and taken back when it succeeds,
so a burst of parallel guesses cannot slip in before the first failure is
recorded. Within the sliding `window`, an attempt for user U from address A
is refused when

- A has `per_address` failures (for any users), or
- U has `per_user` failures (from any addresses) *and* A is one of them.

The second rule is what keeps an attacker from locking a user out: guesses
from one address count against the user everywhere, but refuse only the
addresses that guessed wrong; the user logging in from an address that has
not failed gets in. A success forgets the user's failures from that address.

The check and the record happen in one transaction under advisory locks on
the user name and the address (taken in a fixed order), so two replicas
admit no more guesses than one. Logins for one user name take turns within a
process (`turn`), at most `per_user` at once, so a user's own parallel
logins wait rather than count against each other.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class Rules:
    """At most `per_user` failures for a user and `per_address` from an address in `window` s."""

    per_user: int = 5
    per_address: int = 20
    window: float = 300.0


@dataclass(frozen=True)
class Admission:
    """An admitted attempt (`attempt` is its failure row), or a refusal with `wait` seconds."""

    attempt: int | None
    wait: float


# Taken before the count, in its own statement: the count's snapshot then sees every
# attempt admitted under the same locks (READ COMMITTED takes a snapshot per statement).
_LOCK = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:locks AS bigint[])) AS k")
# Drop what left the window, count, and record the attempt if admitted.
_ADMIT = text("""
WITH pruned AS (
  DELETE FROM login_failures WHERE at <= now() - make_interval(secs => :window)
), recent AS (
  SELECT username, address, at FROM login_failures
  WHERE at > now() - make_interval(secs => :window)
    AND (username = :username OR address = :address)
), figures AS (
  SELECT
    count(*) FILTER (WHERE address = :address) AS by_address,
    min(at) FILTER (WHERE address = :address) AS oldest_by_address,
    count(*) FILTER (WHERE username = :username) AS by_user,
    min(at) FILTER (WHERE username = :username) AS oldest_by_user,
    max(at) FILTER (WHERE username = :username AND address = :address) AS newest_here
  FROM recent
), verdict AS (
  SELECT
    GREATEST(
      CASE WHEN by_address >= :per_address
        THEN extract(epoch FROM oldest_by_address + make_interval(secs => :window) - now())
        ELSE 0 END,
      CASE WHEN by_user >= :per_user AND newest_here IS NOT NULL
        THEN extract(epoch FROM LEAST(oldest_by_user, newest_here)
                     + make_interval(secs => :window) - now())
        ELSE 0 END
    ) AS wait
  FROM figures
), recorded AS (
  INSERT INTO login_failures (username, address)
  SELECT :username, :address FROM verdict WHERE wait <= 0
  RETURNING id
)
SELECT (SELECT wait FROM verdict) AS wait, (SELECT id FROM recorded) AS attempt
""")

_FORGIVE = text("""
DELETE FROM login_failures
WHERE id = :attempt OR (username = :username AND address = :address)
""")


def _lock_key(kind: str, value: str) -> int:
    """A 63-bit advisory lock key for a user name or an address."""
    return zlib.crc32(f"{kind}:{value}".encode()) | (0x5A17 << 32)


def _storable(value: str) -> str:
    """PostgreSQL text cannot hold NUL; a name with one is still counted, as its own key."""
    return value.replace("\x00", "\ufffd")


class LoginThrottle:
    def __init__(self, engine: AsyncEngine, rules: Rules = Rules()) -> None:
        self._engine = engine
        self.rules = rules
        # user name -> its semaphore and how many hold or wait for it; gone when nobody does
        self._turns: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def turn(self, username: str) -> AsyncIterator[None]:
        """Wait until fewer than `per_user` attempts for `username` are under way here."""
        turns, holders = self._turns.get(username, (asyncio.Semaphore(self.rules.per_user), 0))
        self._turns[username] = (turns, holders + 1)
        try:
            async with turns:
                yield
        finally:
            turns, holders = self._turns[username]
            if holders == 1:
                del self._turns[username]
            else:
                self._turns[username] = (turns, holders - 1)

    async def admit(self, username: str, address: str) -> Admission:
        """Record the attempt as failed and admit it, or refuse it with the seconds to wait."""
        username, address = _storable(username), _storable(address)
        locks = sorted({_lock_key("user", username), _lock_key("address", address)})
        async with self._engine.begin() as connection:
            await connection.execute(_LOCK, {"locks": locks})
            row = (
                await connection.execute(
                    _ADMIT,
                    {
                        "locks": locks,
                        "username": username,
                        "address": address,
                        "window": self.rules.window,
                        "per_user": self.rules.per_user,
                        "per_address": self.rules.per_address,
                    },
                )
            ).one()
        if row.attempt is None:
            return Admission(None, max(float(row.wait), 1.0))
        return Admission(int(row.attempt), 0.0)

    async def forgive(self, username: str, address: str, attempt: int) -> None:
        """The attempt succeeded: forget it and the user's other failures from this address."""
        values = {
            "attempt": attempt,
            "username": _storable(username),
            "address": _storable(address),
        }
        async with self._engine.begin() as connection:
            await connection.execute(_FORGIVE, values)
