"""Password hashing with argon2 (passlib), always off the event loop.

A failed login must take as long whether or not the user exists, so an
unknown name is verified against a dummy hash of the same parameters.
"""

from __future__ import annotations

import asyncio
from functools import cache

from passlib.context import CryptContext

_CONTEXT = CryptContext(schemes=["argon2"], deprecated="auto")


@cache
def _dummy_hash() -> str:
    return str(_CONTEXT.hash("ogdc-hooks: no such user"))


def _verify(password: str, hashed: str) -> tuple[bool, str | None]:
    ok, new_hash = _CONTEXT.verify_and_update(password, hashed)
    return bool(ok), new_hash


async def hash_password(password: str) -> str:
    return str(await asyncio.to_thread(_CONTEXT.hash, password))


async def verify_password(password: str, hashed: str) -> tuple[bool, str | None]:
    """Whether `password` matches, and a new hash when the stored one uses old parameters."""
    return await asyncio.to_thread(_verify, password, hashed)


async def verify_nothing(password: str) -> None:
    """Spend the time of one verification, for a user that does not exist."""
    await asyncio.to_thread(_verify, password, _dummy_hash())
