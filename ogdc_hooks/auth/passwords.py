"""Password hashing with argon2 (passlib), always off the event loop.

Hashing runs in a thread pool of its own, as wide as the machine has cores:
a burst of logins then queues there instead of filling the default executor
that git, file reading and rendering share (`asyncio.to_thread`).

A failed login must take as long whether or not the user exists, so an
unknown name is verified against a dummy hash of the same parameters.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

from passlib.context import CryptContext

T = TypeVar("T")

_CONTEXT = CryptContext(schemes=["argon2"], deprecated="auto")
_HASHING = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="argon2")


@cache
def _dummy_hash() -> str:
    return str(_CONTEXT.hash("ogdc-hooks: no such user"))


def _verify(password: str, hashed: str) -> tuple[bool, str | None]:
    ok, new_hash = _CONTEXT.verify_and_update(password, hashed)
    return bool(ok), new_hash


def _verify_nothing(password: str) -> None:
    _verify(password, _dummy_hash())


async def _off_loop(work: Callable[..., T], *args: str) -> T:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, work, *args)


async def hash_password(password: str) -> str:
    return str(await _off_loop(_CONTEXT.hash, password))


async def verify_password(password: str, hashed: str) -> tuple[bool, str | None]:
    """Whether `password` matches, and a new hash when the stored one uses old parameters."""
    return await _off_loop(_verify, password, hashed)


async def verify_nothing(password: str) -> None:
    """Spend the time of one verification, for a user that does not exist."""
    await _off_loop(_verify_nothing, password)
