"""Whose authority an API submission borrows: where `/submit` may fetch from, and whether
the service's forge credentials may be used (and the run shown on the commit).

Hosts: only those in `OGDC_SUBMIT_ALLOWED_HOSTS` (by default the forge's web host),
and a host that resolves to a loopback, private, link-local or otherwise
non-public address only when the operator listed it explicitly.

Credentials: only for a repository the service is configured for (where the forge
scopes its credentials itself, as a GitHub App's installations do, that forge says;
else `OGDC_CREDENTIAL_REPOSITORIES` lists it), and only when the submitting user may
act there: an admin, or a user whose login on that forge has write access to it.
Otherwise the repository is cloned anonymously and treated as a plain URL, so nothing
is reported on it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from ogdc_hooks.auth.users import Account
from ogdc_hooks.checkout import GitToken
from ogdc_hooks.jobs.errors import PermanentError
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.sources import RecipeSource, on_forge
from ogdc_hooks.settings import Settings

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}


class NotAllowed(Exception):
    """The submission may not borrow what it asks for; the message says so, for the user."""


@dataclass(frozen=True)
class Authority:
    """What a submission may use: a clone token (None: anonymous) and the forge's hint."""

    token: GitToken | None
    installation_id: int | None

    @property
    def acts(self) -> bool:
        """Whether the submission acts on the forge repository (credentials, reports)."""
        return self.token is not None


ANONYMOUS = Authority(None, None)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def _entry(entry: str, scheme: str) -> tuple[str, int]:
    parts = urlsplit(f"//{entry}")
    return (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def _listed(settings: Settings, url: str) -> bool | None:
    """True: listed explicitly; False: allowed by default (the forge); None: not allowed."""
    target = _host_port(url)
    scheme = urlsplit(url).scheme
    if settings.submit_allowed_hosts:
        listed = {_entry(entry, scheme) for entry in settings.submit_allowed_hosts}
        return True if target in listed else None
    forges = {_host_port(url) for url in settings.forge_web_urls}
    return False if target in forges else None


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


async def _resolves_publicly(host: str, port: int) -> bool:
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(_public(str(info[4][0])) for info in found)


NOT_ALLOWED_HOST = (
    "recipe_path: this service fetches recipes only from the hosts its operator allows "
    "(OGDC_SUBMIT_ALLOWED_HOSTS); use a repository there, or ask an admin to add the host."
)


async def check_fetchable(settings: Settings, url: str) -> None:
    """Refuse a clone URL whose host the operator does not allow (`NotAllowed`)."""
    listed = _listed(settings, url)
    if listed is None or (not listed and not await _resolves_publicly(*_host_port(url))):
        raise NotAllowed(NOT_ALLOWED_HOST)


def _configured(settings: Settings, repository: str) -> bool:
    """Token mode: whether `OGDC_CREDENTIAL_REPOSITORIES` lists the repository."""
    name = repository.lower()
    return any(fnmatchcase(name, pattern) for pattern in settings.credential_repositories)


async def authority_for(pipeline: Pipeline, source: RecipeSource, user: Account) -> Authority:
    """The credentials the submission may use; `ANONYMOUS` unless every rule allows them.

    Raises `TransientError` when the forge cannot say right now.
    """
    forge = pipeline.forges.get(source.forge)
    if forge is None or not on_forge(source.repository):
        return ANONYMOUS
    if not forge.scopes_credentials and not _configured(pipeline.settings, source.repository):
        return ANONYMOUS
    repo = await forge.locate(source.repository, pipeline.database.engine)
    try:
        token = await pipeline.git_token(repo)
        if token is None:
            return ANONYMOUS
        login = user.forge_logins.get(forge.host)
        if not user.is_admin and not (login and await forge.may_write(repo, login)):
            log.info("%s may not act on %s: cloning anonymously", user.name, source.repository)
            return ANONYMOUS
    except PermanentError as err:  # not installed there, or the forge refused for good
        log.info("no credential for %s: %s", source.repository, err)
        return ANONYMOUS
    return Authority(token, repo.hint)
