"""One Forgejo or Gitea instance as a `forges.base.Forge`: pushes read from its payloads,
reports as commit statuses, clones and API calls with its token (if any)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from ogdc_hooks.forges.base import CommitReport, Event, Housekeeping, RepoRef, RunCommand
from ogdc_hooks.forges.forgejo.client import ForgejoClient, repository_path
from ogdc_hooks.forges.forgejo.errors import ForgejoRefused
from ogdc_hooks.forges.forgejo.payloads import NotOnInstance, push_of
from ogdc_hooks.forges.forgejo.statuses import status_body
from ogdc_hooks.settings import ForgejoInstance

log = logging.getLogger(__name__)

# services/auth/basic.go: with a token as the password, the user name is not looked at.
CLONE_USER = "oauth2"
WRITERS = ("write", "admin", "owner")  # AccessMode names of GetRepoPermissions
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


class ForgejoForge:
    """The pipeline's view of one instance. Without a token its repositories are cloned
    anonymously and runs are only recorded, not reported."""

    kind = "forgejo"

    def __init__(self, instance: ForgejoInstance, session: aiohttp.ClientSession) -> None:
        self.instance = instance
        self.host = instance.host
        self.web_url = instance.url
        self.label = f"Forgejo at {self.host}"
        self.scopes_credentials = False  # one token for every repository it can reach
        self.client = ForgejoClient(session, instance, label=self.label)

    def commit_url(self, repository: str, sha: str) -> str:
        return f"{self.web_url}/{repository}/commit/{sha}"

    def file_url(self, repository: str, sha: str, path: str, line: int | None = None) -> str:
        """Forgejo's source view of a commit, `#L<n>` for the line (routes `/src/commit/`,
        forgejo `routers/web/web.go`)."""
        anchor = f"#L{line}" if line else ""
        return f"{self.web_url}/{repository}/src/commit/{sha}/{quote(path)}{anchor}"

    def event_of(self, delivery_id: str, event: str, payload: Mapping[str, Any]) -> Event | None:
        if event != "push":
            return None
        try:
            return push_of(self.instance, payload, delivery_id)
        except NotOnInstance as err:
            raise ForgejoRefused(str(err)) from None

    async def housekeep(self, event: Housekeeping, engine: AsyncEngine) -> None:
        """Forgejo sends nothing only the forge acts on."""

    async def locate(self, name: str, engine: AsyncEngine) -> RepoRef:
        repository_path(name)
        return RepoRef(self.host, name)

    async def clone_token(self, repo: RepoRef) -> str | None:
        token = self.instance.token
        return token.reveal() if token else None

    def clone_user(self) -> str:
        return CLONE_USER

    async def default_branch(self, repo: RepoRef) -> str:
        """`GET /repos/{owner}/{repo}`'s `default_branch`."""
        answer = await self.client.call("GET", repository_path(repo.name))
        branch = answer.get("default_branch") if isinstance(answer, dict) else None
        if not isinstance(branch, str) or not branch:
            raise ForgejoRefused(f"{self.label} named no default branch for {repo.name}")
        return branch

    async def may_write(self, repo: RepoRef, login: str) -> bool:
        """`GET /repos/{owner}/{repo}/collaborators/{login}/permission` says write, admin
        or owner; a user Forgejo does not know may not (404)."""
        if not self.client.has_token:
            return False
        path = f"{repository_path(repo.name)}/collaborators/{_segment(login)}/permission"
        try:
            answer = await self.client.call("GET", path)
        except ForgejoRefused as err:
            if err.status == 404:
                return False
            raise
        return isinstance(answer, dict) and answer.get("permission") in WRITERS

    async def commit_author(self, repo: RepoRef, sha: str) -> str | None:
        """The Forgejo user the commit's author email belongs to, if any
        (`GET /repos/{owner}/{repo}/git/commits/{sha}`)."""
        if not _SHA.fullmatch(sha):
            raise ForgejoRefused(f"not a commit SHA: {sha!r}")
        answer = await self.client.call("GET", f"{repository_path(repo.name)}/git/commits/{sha}")
        author = answer.get("author") if isinstance(answer, dict) else None
        login = author.get("login") if isinstance(author, dict) else None
        return login if isinstance(login, str) and login else None

    async def report(
        self, report: CommitReport, previous_id: int | None, repo: RepoRef
    ) -> int | None:
        """A commit status (`POST /repos/{owner}/{repo}/statuses/{sha}`); statuses have no
        id to update, so None. Nothing is sent without a token."""
        if not self.client.has_token:
            return None
        if not _SHA.fullmatch(report.commit_sha):
            raise ForgejoRefused(f"not a commit SHA: {report.commit_sha!r}")
        path = f"{repository_path(repo.name)}/statuses/{report.commit_sha}"
        await self.client.call("POST", path, status_body(report))
        log.info(
            "forgejo: status %s %s on %s@%s",
            report.name,
            report.state,
            repo.name,
            report.commit_sha[:12],
        )
        return None

    async def answer_command(self, command: RunCommand, accepted: bool, reply: str | None) -> None:
        """Never asked: this forge's payloads are read into pushes only (no pull requests yet)."""


def _segment(login: str) -> str:
    """A Forgejo login as one path segment; ForgejoRefused for what no login can be."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", login):
        raise ForgejoRefused(f"not a Forgejo login: {login!r}")
    return login
