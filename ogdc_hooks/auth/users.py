"""The user store: every query on the `users` table, returning plain `Account` values.

Handlers and workers get `Account`s, never ORM objects, so nothing lazy-loads
outside a session and the password hash never travels further than login.
Looking a user up by name happens on every authenticated request, so it goes
straight through asyncpg (`lookups`); everything else goes through SQLAlchemy.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ogdc_hooks.auth.passwords import hash_password, verify_nothing, verify_password
from ogdc_hooks.auth.tokens import Subject
from ogdc_hooks.db.tables import User

ADMIN_NAME: Final = "admin"


class _Unset:
    """Marks a field a change leaves alone (as opposed to setting it to None)."""


UNSET: Final = _Unset()


@dataclass(frozen=True)
class Account:
    id: int
    token_version: int
    name: str
    github_login: str | None
    is_admin: bool
    is_active: bool
    created_at: datetime
    updated_at: datetime


class UserExists(Exception):
    """Another user already has this name or GitHub login; `field` says which."""

    def __init__(self, field: str, value: str) -> None:
        super().__init__(f"a user with {field} {value!r} already exists")
        self.field = field


# The columns of an Account, compiled once into the SQL asyncpg runs for a lookup by name.
_ACCOUNT_COLUMNS = (
    User.id,
    User.token_version,
    User.name,
    User.github_login,
    User.is_admin,
    User.is_active,
    User.created_at,
    User.updated_at,
)
_ACCOUNT_BY_NAME = str(
    select(*_ACCOUNT_COLUMNS)
    .where(User.name == bindparam("name"))
    .compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
)
_CONSTRAINT_FIELDS = {"users_name_key": "name", "users_github_login_lower_key": "github_login"}


def _storable(text: str) -> bool:
    """PostgreSQL text cannot hold NUL: such a name or login matches no row."""
    return "\x00" not in text


def _account(user: User) -> Account:
    return Account(
        id=user.id,
        token_version=user.token_version,
        name=user.name,
        github_login=user.github_login,
        is_admin=user.is_admin,
        is_active=user.is_active,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def _conflict(err: IntegrityError, values: dict[str, Any]) -> UserExists | None:
    constraint = getattr(err.orig.__cause__, "constraint_name", None) if err.orig else None
    field = _CONSTRAINT_FIELDS.get(str(constraint))
    return UserExists(field, str(values.get(field))) if field else None


class UserStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], lookups: asyncpg.Pool) -> None:
        self._sessions = sessions
        self._lookups = lookups

    async def _find(self, name: str) -> User | None:
        if not _storable(name):
            return None
        async with self._sessions() as session:
            return await session.scalar(select(User).where(User.name == name))

    async def get(self, name: str) -> Account | None:
        if not _storable(name):
            return None
        try:
            row = await self._lookups.fetchrow(_ACCOUNT_BY_NAME, name)
        except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError):
            # A pooled connection died (database restarted): once more on a fresh one.
            row = await self._lookups.fetchrow(_ACCOUNT_BY_NAME, name)
        return Account(**row) if row else None

    async def active(self, subject: Subject) -> Account | None:
        """The user a token names, if it still exists (the same row, not a namesake created
        since), is enabled, and has not changed its password since the token was issued."""
        account = await self.get(subject.name)
        if account is None or not account.is_active:
            return None
        if (account.id, account.token_version) != (subject.user_id, subject.version):
            return None
        return account

    async def by_github_login(self, login: str) -> Account | None:
        """The user who pushes as `login` (GitHub logins are case-insensitive)."""
        if not _storable(login):
            return None
        async with self._sessions() as session:
            user = await session.scalar(
                select(User).where(func.lower(User.github_login) == login.lower())
            )
        return _account(user) if user else None

    async def list(self) -> list[Account]:
        async with self._sessions() as session:
            users = await session.scalars(select(User).order_by(User.name))
            return [_account(user) for user in users]

    async def authenticate(self, name: str, password: str) -> Account | None:
        """The active user with this name and password, else None, in the same time either way."""
        user = await self._find(name)
        if user is None:
            await verify_nothing(password)
            return None
        ok, new_hash = await verify_password(password, user.password_hash)
        if not ok or not user.is_active:
            return None
        if new_hash is not None:
            await self._write(name, {"password_hash": new_hash})
        return _account(user)

    async def create(
        self, name: str, password: str, github_login: str | None = None, *, is_admin: bool = False
    ) -> Account:
        values: dict[str, Any] = {"name": name, "github_login": github_login}
        user = User(
            name=name,
            password_hash=await hash_password(password),
            github_login=github_login,
            is_admin=is_admin,
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(user)
                await session.flush()
                await session.refresh(user)
        except IntegrityError as err:
            raise _conflict(err, values) or err from None
        return _account(user)

    async def update(
        self,
        name: str,
        *,
        password: str | _Unset = UNSET,
        github_login: str | _Unset | None = UNSET,
        active: bool | _Unset = UNSET,
    ) -> Account | None:
        """Change the given fields; None when no such user exists."""
        values: dict[str, Any] = {}
        if not isinstance(password, _Unset):
            values["password_hash"] = await hash_password(password)
            values["token_version"] = User.token_version + 1  # ends the tokens issued before
        if not isinstance(github_login, _Unset):
            values["github_login"] = github_login
        if not isinstance(active, _Unset):
            values["is_active"] = active
        return await self._write(name, values)

    async def _write(self, name: str, values: dict[str, Any]) -> Account | None:
        if not _storable(name):
            return None
        statement = (
            update(User)
            .where(User.name == name)
            .values(**values, updated_at=func.now())
            .returning(User)
        )
        try:
            async with self._sessions() as session, session.begin():
                user = await session.scalar(statement)
        except IntegrityError as err:
            raise _conflict(err, values) or err from None
        return _account(user) if user else None

    async def delete(self, name: str) -> bool:
        if not _storable(name):
            return False
        async with self._sessions() as session, session.begin():
            deleted = await session.scalar(delete(User).where(User.name == name).returning(User.id))
        return deleted is not None

    async def signed_in(self, name: str) -> Account | None:
        """The user a single sign-on token names, created on its first use (safe from many
        replicas at once); None when the name cannot be stored.

        A new user gets the hash of a random password nobody is told, so it cannot log in
        with `POST /token` until an admin gives it a password.
        """
        if not _storable(name):
            return None
        account = await self.get(name)
        if account is not None:
            return account
        unusable = await hash_password(secrets.token_urlsafe(32))
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(User)
                .values(name=name, password_hash=unusable)
                .on_conflict_do_nothing(index_elements=[User.name])
            )
        return await self.get(name)

    async def ensure_admin(self, password: str) -> str | None:
        """Create the `admin` user, or make its password `password` again; safe from many
        replicas at once. Returns "created", "updated", or None when nothing changed."""
        async with self._sessions() as session, session.begin():
            created = await session.scalar(
                insert(User)
                .values(name=ADMIN_NAME, password_hash=await hash_password(password), is_admin=True)
                .on_conflict_do_nothing(index_elements=[User.name])
                .returning(User.id)
            )
            if created is not None:
                return "created"
            admin = await session.scalar(
                select(User).where(User.name == ADMIN_NAME).with_for_update()
            )
            assert admin is not None  # the insert conflicted on this name
            ok, _ = await verify_password(password, admin.password_hash)
            if ok and admin.is_admin and admin.is_active:
                return None
            if not ok:
                admin.password_hash = await hash_password(password)
                admin.token_version += 1
            admin.is_admin = admin.is_active = True
            return "updated"
