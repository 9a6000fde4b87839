"""GitHub (github.com or an Enterprise host) as a `forges.base.Forge`: its payloads read into
neutral events, its App installations kept, and the `GitHubReporter`'s calls by `RepoRef`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ogdc_hooks.db.tables import Installation, InstallationRepository
from ogdc_hooks.forges.base import (
    ActionRequested,
    CommitReport,
    Event,
    Housekeeping,
    Push,
    RepoRef,
    ReportAction,
    RerunRequested,
    RunCommand,
)
from ogdc_hooks.forges.github.errors import PermanentForgeError
from ogdc_hooks.forges.github.proposals import (
    asks_for_work,
    merge_group_of,
    pull_request_of,
    run_command_of,
)
from ogdc_hooks.forges.github.reporter import GitHubReporter
from ogdc_hooks.redact import without_credentials
from ogdc_hooks.settings import Settings
from ogdc_hooks.webhooks.events import ZERO_SHA

CLONE_USER = "x-access-token"  # GitHub: the user name for an App or personal token over HTTPS


def _login(value: Any) -> str | None:
    login = value.get("login") if isinstance(value, Mapping) else None
    return login if isinstance(login, str) and login else None


def push_of(host: str, payload: Mapping[str, Any], delivery_id: str) -> Push:
    """The neutral push of a GitHub `push` payload (KeyError when it lacks what every push has)."""
    repository = payload["repository"]
    installation = payload.get("installation") or {}
    hint = installation.get("id")
    return Push(
        repo=RepoRef(host, repository["full_name"], hint if isinstance(hint, int) else None),
        ref=payload["ref"],
        before=payload.get("before") or ZERO_SHA,
        after=payload["after"],
        default_branch=repository.get("default_branch") or "main",
        pusher=_login(payload.get("sender")),
        clone_url=without_credentials(repository["clone_url"]),
        forced=bool(payload.get("forced")),
        created=bool(payload.get("created")),
        deleted=bool(payload.get("deleted")),
        delivery_id=delivery_id,
    )


def rerun_of(host: str, payload: Mapping[str, Any], delivery_id: str) -> RerunRequested:
    """`check_run.rerequested`: the check's `external_id` is our run id, `head_sha` its commit."""
    check_run = payload.get("check_run") or {}
    try:
        run_id: uuid.UUID | None = uuid.UUID(str(check_run.get("external_id")))
    except ValueError:
        run_id = None
    full_name = (payload.get("repository") or {}).get("full_name")
    hint = (payload.get("installation") or {}).get("id")
    head_sha = check_run.get("head_sha")
    return RerunRequested(
        repo=RepoRef(
            host,
            full_name if isinstance(full_name, str) else "",
            hint if isinstance(hint, int) else None,
        ),
        commit_sha=head_sha if isinstance(head_sha, str) else None,
        run_id=run_id,
        requester=_login(payload.get("sender")),
        delivery_id=delivery_id,
    )


def action_of(host: str, payload: Mapping[str, Any], delivery_id: str) -> ActionRequested:
    """`check_run.requested_action`: a button of ours pressed; `requested_action.identifier`
    names it (https://docs.github.com/en/webhooks/webhook-events-and-payloads#check_run)."""
    rerun = rerun_of(host, payload, delivery_id)
    identifier = (payload.get("requested_action") or {}).get("identifier")
    try:
        action: ReportAction | None = ReportAction(str(identifier))
    except ValueError:
        action = None
    return ActionRequested(
        rerun.repo, rerun.commit_sha, rerun.run_id, action, rerun.requester, delivery_id
    )


def _names(repositories: Any) -> list[str]:
    return [r["full_name"] for r in repositories or () if isinstance(r, dict) and "full_name" in r]


async def remember_installation(engine: AsyncEngine, payload: Mapping[str, Any]) -> None:
    """Keep the App's installations and the repositories each covers (`installation` and
    `installation_repositories` events), so submissions find a repository's installation."""
    installation = payload.get("installation") or {}
    installation_id = installation.get("id")
    if not isinstance(installation_id, int):
        return
    action = payload.get("action")
    added = _names(payload.get("repositories") or payload.get("repositories_added"))
    removed = _names(payload.get("repositories_removed"))
    account = str((installation.get("account") or {}).get("login") or "")
    async with engine.begin() as connection:
        if action == "deleted":
            await connection.execute(delete(Installation).where(Installation.id == installation_id))
            return
        await connection.execute(
            insert(Installation)
            .values(id=installation_id, account=account, active=action != "suspend")
            .on_conflict_do_update(
                index_elements=["id"], set_={"account": account, "active": action != "suspend"}
            )
        )
        for name in added:
            await connection.execute(
                insert(InstallationRepository)
                .values(full_name=name, installation_id=installation_id)
                .on_conflict_do_update(
                    index_elements=["full_name"], set_={"installation_id": installation_id}
                )
            )
        if removed:
            await connection.execute(
                delete(InstallationRepository).where(InstallationRepository.full_name.in_(removed))
            )


class GitHubForge:
    """The configured GitHub for the pipeline (`forges.base.Forge`). Without an App or a
    token (`reporter` None) its deliveries are still read, clones are anonymous and runs
    are only recorded."""

    kind = "github"

    def __init__(self, reporter: GitHubReporter | None, settings: Settings) -> None:
        self.reporter = reporter
        self.host = settings.github_host
        self.web_url = settings.github_web_url
        self.label = "GitHub"  # an Enterprise host too: messages name the forge, not the host
        self.scopes_credentials = settings.github_app_mode  # installations say where

    def commit_url(self, repository: str, sha: str) -> str:
        return f"{self.web_url}/{repository}/commit/{sha}"

    def file_url(self, repository: str, sha: str, path: str, line: int | None = None) -> str:
        """GitHub's blob view; `#L<n>` marks the line
        (https://docs.github.com/en/repositories/working-with-files/using-files/getting-permanent-links-to-files)."""
        anchor = f"#L{line}" if line else ""
        return f"{self.web_url}/{repository}/blob/{sha}/{quote(path)}{anchor}"

    def event_of(self, delivery_id: str, event: str, payload: Mapping[str, Any]) -> Event | None:
        if event == "push":
            return push_of(self.host, payload, delivery_id)
        if event == "check_run" and payload.get("action") == "rerequested":
            return rerun_of(self.host, payload, delivery_id)
        if event == "check_run" and payload.get("action") == "requested_action":
            return action_of(self.host, payload, delivery_id)
        if event in ("installation", "installation_repositories"):
            return Housekeeping(event, payload, delivery_id)
        if not asks_for_work(event, payload):
            return None
        if event == "pull_request":
            return pull_request_of(self.host, payload, delivery_id)
        if event == "merge_group":
            return merge_group_of(self.host, payload, delivery_id)
        if event == "issue_comment":
            return run_command_of(self.host, payload, delivery_id)
        return None

    async def housekeep(self, event: Housekeeping, engine: AsyncEngine) -> None:
        await remember_installation(engine, event.payload)

    async def locate(self, name: str, engine: AsyncEngine) -> RepoRef:
        """With the App installation covering the repository, as installation events said."""
        async with engine.connect() as connection:
            hint = await connection.scalar(
                select(InstallationRepository.installation_id).where(
                    InstallationRepository.full_name == name
                )
            )
        return RepoRef(self.host, name, hint)

    async def clone_token(self, repo: RepoRef) -> str | None:
        if self.reporter is None:
            return None
        return await self.reporter.clone_token(repo.name, repo.hint)

    def clone_user(self) -> str:
        return CLONE_USER

    async def default_branch(self, repo: RepoRef) -> str:
        return await self._reporter().default_branch(repo.name, repo.hint)

    async def may_write(self, repo: RepoRef, login: str) -> bool:
        if self.reporter is None:
            return False
        return await self.reporter.may_write(repo.name, login, repo.hint)

    async def commit_author(self, repo: RepoRef, sha: str) -> str | None:
        if self.reporter is None:
            return None
        return await self.reporter.commit_author(repo.name, sha, repo.hint)

    async def report(
        self, report: CommitReport, previous_id: int | None, repo: RepoRef
    ) -> int | None:
        if self.reporter is None:
            return None  # nowhere to report: the run is only recorded
        return await self.reporter.report(report, previous_id, repo.hint)

    async def answer_command(self, command: RunCommand, accepted: bool, reply: str | None) -> None:
        if self.reporter is not None:
            await self.reporter.answer_comment(
                command.repo.name,
                command.number,
                command.comment_id,
                "rocket" if accepted else "confused",
                reply,
                installation_id=command.repo.hint,
            )

    def _reporter(self) -> GitHubReporter:
        if self.reporter is None:
            raise PermanentForgeError("no GitHub App or token is configured (GITHUB_TOKEN)")
        return self.reporter
