"""Forgejo's push payload as a neutral `Push`, for repositories on the instance's own origin.

Pure. Forgejo's `PushPayload` (modules/structs/hook.go) has ref, before, after,
commits (cut to a few), repository, pusher and sender, and no created/deleted/forced:
a new branch has `before` all zeros, and what changed always comes from git, never
from `commits`. A payload's repository URLs are checked against the instance it was
matched to: a clone URL on any other origin is never cloned (nor given the token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ogdc_hooks.forges.base import Push, RepoRef
from ogdc_hooks.redact import without_credentials
from ogdc_hooks.settings import ForgejoInstance
from ogdc_hooks.webhooks.events import ZERO_SHA

URL_FIELDS = ("clone_url", "html_url")


class NotOnInstance(ValueError):
    """The payload's repository is not on the instance (or names no repository at all)."""


def on_instance(instance_url: str, url: str) -> bool:
    """Whether `url` is on the instance's origin, under its base path (`https://host/git`)."""
    base, parts = urlsplit(instance_url), urlsplit(url)
    return (
        parts.scheme.lower() == base.scheme.lower()
        and parts.netloc.lower() == base.netloc.lower()
        and (parts.path.rstrip("/") + "/").startswith(base.path.rstrip("/") + "/")
        and parts.path.rstrip("/") != base.path.rstrip("/")
    )


def repository_urls(payload: Mapping[str, Any]) -> list[str] | None:
    """The URLs a payload's repository names (`clone_url`, `html_url`); None without a
    repository or a clone URL."""
    repository = payload.get("repository")
    if not isinstance(repository, Mapping) or not isinstance(repository.get("clone_url"), str):
        return None
    return [str(repository[key]) for key in URL_FIELDS if isinstance(repository.get(key), str)]


def belongs_to(instance: ForgejoInstance, payload: Mapping[str, Any]) -> bool:
    """Whether every repository URL of the payload is on `instance` (False without any)."""
    urls = repository_urls(payload)
    return bool(urls) and all(on_instance(instance.url, url) for url in urls or ())


def _login(user: Any) -> str | None:
    """`login` of a Forgejo user (or its compatibility copy `username`)."""
    if not isinstance(user, Mapping):
        return None
    for key in ("login", "username"):
        value = user.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def push_of(instance: ForgejoInstance, payload: Mapping[str, Any], delivery_id: str) -> Push:
    """The neutral push; `NotOnInstance` when its repository is elsewhere, KeyError when it
    lacks what every push has."""
    if not belongs_to(instance, payload):
        raise NotOnInstance(
            f"the push's repository URLs are not on {instance.url}; it is not cloned"
        )
    repository = payload["repository"]
    before = payload.get("before") or ZERO_SHA
    after = payload["after"]
    return Push(
        repo=RepoRef(instance.host, str(repository["full_name"])),
        ref=str(payload["ref"]),
        before=before,
        after=after,
        default_branch=repository.get("default_branch") or "main",
        pusher=_login(payload.get("pusher")) or _login(payload.get("sender")),
        clone_url=without_credentials(str(repository["clone_url"])),
        forced=False,  # Forgejo does not say; the diff base falls back when `before` is gone
        created=before == ZERO_SHA,
        deleted=after == ZERO_SHA,
        delivery_id=delivery_id,
    )
