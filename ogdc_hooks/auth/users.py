"""The user store: every query on `users` and `forge_logins`, returning plain `Account`s.

Handlers and workers get `Account`s, never ORM objects, so nothing lazy-loads
outside a session and the password hash never travels further than login.
Looking a user up by name happens on every authenticated request, so it goes
straight through asyncpg (`lookups`); everything else goes through SQLAlchemy.
A user has at most one login per forge instance (its host); `github_login` is the
one on the configured GitHub, kept for the API and CLI that name it so.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ogdc_hooks.auth.passwords import hash_password, verify_nothing, verify_password
from ogdc_hooks.auth.tokens import Subject
from ogdc_hooks.db.tables import ForgeLogin, User

ADMIN_NAME: Final = "admin"


class _Unset:
    """Marks a field a change leaves alone (as opposed to setting it to None)."""


UNSET: Final = _Unset()


@dataclass(frozen=True)
class Account:
    id: int
    token_version: int
    name: str
    forge_logins: Mapping[str, str]  # host -> login, e.g. {"github.com": "alice"}
    github_login: str | None  # the login on the configured GitHub, if any
    is_admin: bool
    is_active: bool
    created_at: datetime
    updated_at: datetime


class UserExists(Exception):
    """Another user already has this name or a forge login; `field` says which field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NameTaken(UserExists):
    def __init__(self, name: str) -> None:
        super().__init__("name", f"a user with name {name!r} already exists")


class LoginTaken(UserExists):
    """Another user has `login` on `host` (in some case: logins are matched ignoring it)."""

    def __init__(self, host: str, login: str) -> None:
        super().__init__(
            "forge_logins",
            f"another user already has the login {login!r} on {host} "
            "(logins are matched ignoring case)",
        )
        self.host = host
        self.login = login


def _aggregated(column: Any) -> Any:
    """`column` of a user's forge logins as one array, in the order of their hosts."""
    return (
        select(func.array_agg(aggregate_order_by(column, ForgeLogin.host)))
        .where(ForgeLogin.user_id == User.id)
        .scalar_subquery()
    )


# The columns of an Account; the lookup by name is compiled once into the SQL asyncpg runs.
_ACCOUNT_COLUMNS = (
    User.id,
    User.token_version,
    User.name,
    User.is_admin,
    User.is_active,
    User.created_at,
    User.updated_at,
    _aggregated(ForgeLogin.host).label("hosts"),
    _aggregated(ForgeLogin.login).label("logins"),
)
_ACCOUNT_BY_NAME = str(
    select(*_ACCOUNT_COLUMNS)
    .where(User.name == bindparam("name"))
    .compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
)


def _storable(*texts: str) -> bool:
    """PostgreSQL text cannot hold NUL: such a name or login matches no row."""
    return all("\x00" not in text for text in texts)


def _account(row: Mapping[Any, Any], github_host: str) -> Account:
    fields = dict(row)
    logins = dict(zip(fields.pop("hosts") or (), fields.pop("logins") or (), strict=True))
    return Account(**fields, forge_logins=logins, github_login=logins.get(github_host))


def _conflict(err: IntegrityError, name: str) -> UserExists | None:
    constraint = getattr(err.orig.__cause__, "constraint_name", None) if err.orig else None
    return NameTaken(name) if constraint == "users_name_key" else None


async def _set_logins(
    session: AsyncSession, user_id: int, changes: Mapping[str, str | None]
) -> None:
    """Give the user these forge logins (None: none on that host); `LoginTaken` when another
    user has one. A clash inserts nothing, so the one that clashed is known for certain."""
    for host, login in changes.items():
        await session.execute(
            delete(ForgeLogin).where(ForgeLogin.user_id == user_id, ForgeLogin.host == host)
        )
        if login is None:
            continue
        added = await session.scalar(
            insert(ForgeLogin)
            .values(user_id=user_id, host=host, login=login)
            .on_conflict_do_nothing()
            .returning(ForgeLogin.user_id)
        )
        if added is None:
            raise LoginTaken(host, login)


class UserStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        lookups: asyncpg.Pool,
        github_host: str = "github.com",
    ) -> None:
        self._sessions = sessions
        self._lookups = lookups
        self.github_host = github_host  # whose logins `github_login` means

    async def _read(self, session: AsyncSession, *where: Any) -> list[Account]:
        rows = await session.execute(select(*_ACCOUNT_COLUMNS).where(*where).order_by(User.name))
        return [_account(row, self.github_host) for row in rows.mappings()]

    async def _one(self, session: AsyncSession, user_id: int) -> Account:
        [account] = await self._read(session, User.id == user_id)
        return account

    async def get(self, name: str) -> Account | None:
        if not _storable(name):
            return None
        try:
            row = await self._lookups.fetchrow(_ACCOUNT_BY_NAME, name)
        except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError):
            # A pooled connection died (database restarted): once more on a fresh one.
            row = await self._lookups.fetchrow(_ACCOUNT_BY_NAME, name)
        return _account(row, self.github_host) if row else None

    async def active(self, subject: Subject) -> Account | None:
        """The user a token names, if it still exists (the same row, not a namesake created
        since), is enabled, and has not changed its password since the token was issued."""
        account = await self.get(subject.name)
        if account is None or not account.is_active:
            return None
        if (account.id, account.token_version) != (subject.user_id, subject.version):
            return None
        return account

    async def by_forge_login(self, host: str, login: str) -> Account | None:
        """The user who is `login` on the forge at `host` (matched ignoring case, as forges
        match logins)."""
        if not _storable(host, login):
            return None
        owns = select(ForgeLogin.user_id).where(
            ForgeLogin.host == host.lower(), func.lower(ForgeLogin.login) == login.lower()
        )
        async with self._sessions() as session:
            found = await self._read(session, User.id.in_(owns))
        return found[0] if found else None

    async def list(self) -> list[Account]:
        async with self._sessions() as session:
            return await self._read(session)

    async def authenticate(self, name: str, password: str) -> Account | None:
        """The active user with this name and password, else None, in the same time either way."""
        if not _storable(name):
            await verify_nothing(password)
            return None
        async with self._sessions() as session:
            user = await session.scalar(select(User).where(User.name == name))
        if user is None:
            await verify_nothing(password)
            return None
        ok, new_hash = await verify_password(password, user.password_hash)
        if not ok or not user.is_active:
            return None
        return await self._write(name, {"password_hash": new_hash} if new_hash else {})

    def _logins(
        self, github_login: str | _Unset | None, forge_logins: Mapping[str, str | None]
    ) -> dict[str, str | None]:
        """The forge-login changes, `github_login` being the one on the configured GitHub."""
        changes = {host.lower(): login for host, login in forge_logins.items()}
        if not isinstance(github_login, _Unset):
            changes[self.github_host] = github_login
        return changes

    async def create(
        self,
        name: str,
        password: str,
        github_login: str | None = None,
        *,
        forge_logins: Mapping[str, str] | None = None,
        is_admin: bool = False,
    ) -> Account:
        """A new user with these logins; `UserExists` says which name or login is taken."""
        user = User(name=name, password_hash=await hash_password(password), is_admin=is_admin)
        given = UNSET if github_login is None else github_login
        logins = {h: v for h, v in self._logins(given, forge_logins or {}).items() if v}
        try:
            async with self._sessions() as session, session.begin():
                session.add(user)
                await session.flush()
                await _set_logins(session, user.id, logins)
                return await self._one(session, user.id)
        except IntegrityError as err:
            raise _conflict(err, name) or err from None

    async def update(
        self,
        name: str,
        *,
        password: str | _Unset = UNSET,
        github_login: str | _Unset | None = UNSET,
        forge_logins: Mapping[str, str | None] | None = None,
        active: bool | _Unset = UNSET,
    ) -> Account | None:
        """Change the given fields; None when no such user exists.

        `forge_logins` sets a login per host, or removes it (None); hosts not named keep
        theirs. `github_login` is the login on the configured GitHub.
        """
        values: dict[str, Any] = {}
        if not isinstance(password, _Unset):
            values["password_hash"] = await hash_password(password)
            values["token_version"] = User.token_version + 1  # ends the tokens issued before
        if not isinstance(active, _Unset):
            values["is_active"] = active
        return await self._write(name, values, self._logins(github_login, forge_logins or {}))

    async def _write(
        self, name: str, values: dict[str, Any], logins: Mapping[str, str | None] | None = None
    ) -> Account | None:
        if not _storable(name):
            return None
        statement: Any = select(User.id).where(User.name == name)  # nothing changes
        if values or logins:
            statement = (
                update(User)
                .where(User.name == name)
                .values(**values, updated_at=func.now())
                .returning(User.id)
            )
        async with self._sessions() as session, session.begin():
            user_id = await session.scalar(statement)
            if user_id is None:
                return None
            await _set_logins(session, user_id, logins or {})
            return await self._one(session, user_id)

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
