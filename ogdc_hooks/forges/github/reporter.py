"""Telling GitHub about a recipe's run: check runs (App mode) or commit statuses (token mode).

`make_reporter` picks the mode from the settings. A check run is found
again by its `external_id` (our run id) when the caller has no id for it,
and annotations the check run already has are not sent twice, so a report
retried after a failure half-way leaves one check run with each annotation once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp

from ogdc_hooks.forges.base import CommitReport
from ogdc_hooks.forges.github.app_auth import AppCredentials, Credentials, TokenCredentials
from ogdc_hooks.forges.github.checks import (
    AnnotationKey,
    annotation_key,
    check_run_requests,
)
from ogdc_hooks.forges.github.client import GitHubClient, repository_vars
from ogdc_hooks.forges.github.errors import PermanentForgeError
from ogdc_hooks.forges.github.statuses import status_body
from ogdc_hooks.forges.github.transport import Record, Transport
from ogdc_hooks.forges.text import clean, fit_bytes
from ogdc_hooks.forges.write_budget import WriteBudget
from ogdc_hooks.settings import Settings, SettingsError

log = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
CHECK_RUNS = "/repos/{owner}/{repo}/check-runs"
CHECK_RUN = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
COMMENT_CHARS = 65536  # an issue comment's body, at most


class GitHubReporter:
    """GitHub's API for `GitHubForge`: reports on commits, clone tokens and default
    branches; one per process, for every repository."""

    def __init__(self, client: GitHubClient, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self._clock = clock

    async def report(
        self, report: CommitReport, previous_id: int | None, installation_id: int | None = None
    ) -> int | None:
        """Create or update the report on the commit; return the check run id (None for statuses).

        Raises `TransientForgeError` (retry, honouring `retry_after`) or `PermanentForgeError`.
        """
        if not _SHA.fullmatch(report.commit_sha):
            raise PermanentForgeError(f"not a commit SHA: {report.commit_sha!r}")
        if not self.client.app_mode:
            await self.client.call(
                "POST",
                "/repos/{owner}/{repo}/statuses/{sha}",
                {"sha": report.commit_sha},
                repository=report.repository,
                data=status_body(report),
            )
            log.info("github: status %s %s on %s", report.name, report.state, _where(report))
            return None
        return await self._check_run(report, previous_id, installation_id)

    async def clone_token(self, repository: str, installation_id: int | None = None) -> str:
        """A token that can fetch `repository` over HTTPS (as user `x-access-token`)."""
        repository_vars(repository)
        grant = await self.client.credentials.grant(repository, installation_id)
        return grant.token.reveal()

    async def may_write(
        self, repository: str, login: str, installation_id: int | None = None
    ) -> bool:
        """Whether `login` has write, maintain or admin access to `repository`
        (`GET /repos/{owner}/{repo}/collaborators/{username}/permission`, whose `permission`
        folds maintain into write); a login GitHub does not know may not."""
        try:
            answer = await self.client.call(
                "GET",
                "/repos/{owner}/{repo}/collaborators/{username}/permission",
                {"username": login},
                repository=repository,
                installation_id=installation_id,
            )
        except PermanentForgeError as err:
            if err.status == 404:
                return False
            raise
        return isinstance(answer, dict) and answer.get("permission") in ("admin", "write")

    async def default_branch(self, repository: str, installation_id: int | None = None) -> str:
        """The repository's default branch (`GET /repos/{owner}/{repo}`)."""
        answer = await self.client.call(
            "GET", "/repos/{owner}/{repo}", repository=repository, installation_id=installation_id
        )
        branch = answer.get("default_branch") if isinstance(answer, dict) else None
        if not isinstance(branch, str) or not branch:
            raise PermanentForgeError(f"GitHub named no default branch for {repository}")
        return branch

    async def commit_author(
        self, repository: str, sha: str, installation_id: int | None = None
    ) -> str | None:
        """The GitHub account GitHub links the commit's author to (by the author's email),
        None when it links none (`GET /repos/{owner}/{repo}/commits/{ref}`)."""
        answer = await self.client.call(
            "GET",
            "/repos/{owner}/{repo}/commits/{ref}",
            {"ref": sha},
            repository=repository,
            installation_id=installation_id,
        )
        author = answer.get("author") if isinstance(answer, dict) else None
        login = author.get("login") if isinstance(author, dict) else None
        return login if isinstance(login, str) and login else None

    async def answer_comment(
        self,
        repository: str,
        number: int,
        comment_id: int,
        reaction: str,
        reply: str | None,
        *,
        installation_id: int | None = None,
    ) -> None:
        """A reaction on the comment (`POST .../issues/comments/{id}/reactions`), then the
        reply, if any, on the pull request (`POST .../issues/{number}/comments`)."""
        await self.client.call(
            "POST",
            "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
            {"comment_id": str(comment_id)},
            repository=repository,
            installation_id=installation_id,
            data={"content": reaction},
        )
        if reply:
            await self.client.call(
                "POST",
                "/repos/{owner}/{repo}/issues/{number}/comments",
                {"number": str(number)},
                repository=repository,
                installation_id=installation_id,
                data={"body": fit_bytes(clean(reply), COMMENT_CHARS)},
            )

    async def _check_run(
        self, report: CommitReport, previous_id: int | None, installation_id: int | None
    ) -> int:
        if previous_id is None and report.external_id:
            previous_id = await self._find(report, installation_id)
        already = (
            await self._annotated(report.repository, previous_id, installation_id)
            if previous_id is not None and report.problems
            else frozenset()
        )
        now = datetime.fromtimestamp(self._clock(), UTC)
        first, *more = check_run_requests(
            report, now=now, create=previous_id is None, already_annotated=already
        )
        if previous_id is None:
            created = await self.client.call(
                "POST",
                CHECK_RUNS,
                repository=report.repository,
                installation_id=installation_id,
                data=first,
            )
            check_run_id = int(created["id"])
        else:
            check_run_id = previous_id
        ids = {"check_run_id": str(check_run_id)}
        for body in more if previous_id is None else [first, *more]:
            await self.client.call(
                "PATCH",
                CHECK_RUN,
                ids,
                repository=report.repository,
                installation_id=installation_id,
                data=body,
            )
        log.info(
            "github: check run %s %s %s on %s",
            check_run_id,
            report.name,
            report.state,
            _where(report),
        )
        return check_run_id

    async def _find(self, report: CommitReport, installation_id: int | None) -> int | None:
        """The newest check run of this name on the commit that carries our `external_id`.

        A completed one does not count for an unfinished report (a retried run): GitHub
        never reopens a completed check run, so the run gets a new one of the same name
        (https://github.com/orgs/community/discussions/24761)."""
        runs = await self.client.collect(
            "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,filter,per_page}",
            {
                "ref": report.commit_sha,
                "check_name": report.name,
                "filter": "all",
                "per_page": "100",
            },
            repository=report.repository,
            installation_id=installation_id,
            iterable_key="check_runs",
        )
        reopening = not report.state.finished
        ours = [
            int(run["id"])
            for run in runs
            if run.get("external_id") == report.external_id
            and not (reopening and run.get("status") == "completed")
        ]
        return max(ours, default=None)

    async def _annotated(
        self, repository: str, check_run_id: int, installation_id: int | None
    ) -> frozenset[AnnotationKey]:
        annotations = await self.client.collect(
            "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations{?per_page}",
            {"check_run_id": str(check_run_id), "per_page": "100"},
            repository=repository,
            installation_id=installation_id,
        )
        return frozenset(annotation_key(item) for item in annotations)


def _where(report: CommitReport) -> str:
    return f"{report.repository}@{report.commit_sha[:12]}"


def make_reporter(
    settings: Settings,
    session: aiohttp.ClientSession,
    *,
    timeout: float = 30.0,
    clock: Callable[[], float] = time.time,
    record: Record = lambda outcome, credential, remaining: None,
    budget: WriteBudget | None = None,
) -> GitHubReporter | None:
    """The reporter the settings ask for: check runs with an App, statuses with a token,
    None when neither is configured (runs are then only recorded). Its writes are paced
    by `budget` (none: unpaced).

    Raises `SettingsError` when the App's private key is not an RSA key in PEM.
    """
    transport = Transport(
        session, base_url=settings.github_api_url, timeout=timeout, clock=clock, record=record
    )
    credentials: Credentials
    if settings.github_app_id is not None and settings.github_app_private_key is not None:
        try:
            credentials = AppCredentials(
                transport,
                app_id=settings.github_app_id,
                private_key=settings.github_app_private_key,
            )
        except ValueError as err:
            raise SettingsError(f"GITHUB_APP_PRIVATE_KEY: {err}") from None
    elif settings.github_token:
        credentials = TokenCredentials(settings.github_token)
    else:
        return None
    return GitHubReporter(GitHubClient(transport, credentials, budget), clock=clock)
