"""The forge seam: what the core (intake, queue, pipeline, API) knows of a forge.

A forge is one package under `ogdc_hooks/forges/<kind>/` that provides an
`Intake` (its webhook route's signature rule and headers) and a `Forge` (its
events, credentials, default branch, permissions and reports). The core sees
only these shapes and the neutral events below; it stores each delivery, run
and branch head with the host of the forge instance it belongs to, and finds
that instance again in `Forges`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from ogdc_hooks.jobs.kinds import JobKind
from ogdc_hooks.recipes.problems import Problem
from ogdc_hooks.runstate import RunState
from ogdc_hooks.webhooks.events import Delivery

__all__ = [
    "ActionRequested",
    "CommitReport",
    "Event",
    "Forge",
    "Forges",
    "Housekeeping",
    "Intake",
    "MergeGroup",
    "PullRequest",
    "Push",
    "RepoRef",
    "ReportAction",
    "RerunRequested",
    "RunCommand",
    "RunState",
    "SignatureCheck",
]


@dataclass(frozen=True)
class RepoRef:
    """A repository on one forge instance, with the opaque hint the forge gave for its
    credentials (GitHub: the App installation id; others: None). The core stores the hint
    (`installation_id` columns) and passes it back untouched."""

    forge: str  # the instance's host, e.g. "github.com", "codeberg.org"
    name: str  # "owner/name"
    hint: int | None = None


@dataclass(frozen=True)
class Push:
    """A push to a branch, as every forge's payload is read: what the push job acts on."""

    repo: RepoRef
    ref: str  # "refs/heads/<branch>"
    before: str  # ZERO_SHA for a new branch
    after: str
    default_branch: str
    pusher: str | None  # the forge login of who pushed
    clone_url: str  # without credentials
    forced: bool
    created: bool
    deleted: bool
    delivery_id: str
    swept: bool = False  # found by the branch-head sweep, not delivered by a webhook

    @property
    def branch(self) -> str:
        return self.ref.removeprefix("refs/heads/")


@dataclass(frozen=True)
class RerunRequested:
    """Someone asked the forge to run a check again (GitHub: `check_run.rerequested`)."""

    repo: RepoRef
    commit_sha: str | None
    run_id: uuid.UUID | None  # our run the check belongs to, when the forge carries it
    requester: str | None  # the forge login of who asked
    delivery_id: str


class ReportAction(StrEnum):
    """What a person may ask of a run from its report (GitHub: a button on the check run);
    the value is the identifier the forge sends back."""

    CANCEL = "cancel"  # stop the running workflow
    RETRY = "retry"  # run the failed steps of the failed workflow again


@dataclass(frozen=True)
class ActionRequested:
    """Someone pressed one of a report's actions (GitHub: `check_run.requested_action`);
    `action` is None for an identifier that is not one of ours."""

    repo: RepoRef
    commit_sha: str | None
    run_id: uuid.UUID | None  # our run the report belongs to, when the forge carries it
    action: ReportAction | None
    requester: str | None  # the forge login of who asked
    delivery_id: str


@dataclass(frozen=True)
class Housekeeping:
    """A delivery only its forge acts on (GitHub: App installations), via `Forge.housekeep`."""

    event: str
    payload: Mapping[str, Any]
    delivery_id: str


@dataclass(frozen=True)
class PullRequest:
    """A pull request (GitHub) or change proposal opened, pushed to, reopened, or closed.

    The head is always fetched from the base repository (`clone_url`, at `fetch_ref`), so a
    fork's code comes through the repository the service is configured for, read-only."""

    repo: RepoRef  # the base repository
    number: int
    action: str  # opened | synchronize | reopened | ready_for_review | edited | closed
    base_ref: str  # "refs/heads/<branch>"
    base_sha: str  # the base branch's tip as the forge saw it (not the merge base)
    head_sha: str
    head_repo: str | None  # "owner/name" of the head's repository (a fork's, or the base's)
    clone_url: str  # the base repository's, without credentials
    fetch_ref: str  # where the base repository serves the head, e.g. "refs/pull/7/head"
    author: str | None  # the forge login of who opened it
    delivery_id: str
    at: datetime | None = None  # when the forge last changed it (None: when it was delivered)

    @property
    def closed(self) -> bool:
        return self.action == "closed"

    @property
    def from_fork(self) -> bool:
        return self.head_repo is not None and self.head_repo.lower() != self.repo.name.lower()


@dataclass(frozen=True)
class MergeGroup:
    """A merge queue's group (GitHub `merge_group`): `checks_requested` or `destroyed`."""

    repo: RepoRef
    action: str
    base_sha: str
    head_sha: str
    head_ref: str  # where the group's commit lives in the repository
    clone_url: str
    delivery_id: str


@dataclass(frozen=True)
class RunCommand:
    """A `/ogdc run [recipe-dir]` comment on a pull request."""

    repo: RepoRef
    number: int
    commenter: str | None
    comment_id: int
    recipe: str | None  # one recipe directory, or None: every changed recipe
    delivery_id: str
    at: datetime | None = None  # when the comment was written (None: when it was delivered)


Event = (
    Push | RerunRequested | ActionRequested | Housekeeping | PullRequest | MergeGroup | RunCommand
)


@dataclass(frozen=True)
class CommitReport:
    """One recipe's state on one commit, as the forge should show it.

    `name` is the check name / status context (`ogdc/<recipe directory>`, or
    `ogdc` for a push-wide verdict). How `problems` are shown (GitHub: annotations)
    is the forge's business.
    """

    repository: str  # "owner/name"
    commit_sha: str
    name: str
    state: RunState
    title: str
    summary: str
    details_url: str | None = None
    problems: tuple[Problem, ...] = field(default=())
    external_id: str | None = None  # our run id, so a report can be found again
    actions: tuple[ReportAction, ...] = ()  # what may be asked of the run from its report
    text: str | None = None  # more than the summary (GitHub: output.text), e.g. failure logs
    run_url: str | None = None  # the run on this service; statuses of failed runs link there


class Forge(Protocol):
    """One forge instance, as the pipeline uses it. Errors are `jobs.errors.TransientError`
    (retry later) or `PermanentError` (give up) subclasses."""

    kind: str  # "github" | "forgejo"
    host: str  # the instance's identity; also the key of users' forge logins
    label: str  # for messages: "GitHub", "Forgejo at codeberg.org"
    web_url: str  # where people and git reach it, e.g. "https://github.com"
    # Whether the forge itself scopes our credentials to repositories (a GitHub App's
    # installations); else a submission borrows them only where OGDC_CREDENTIAL_REPOSITORIES
    # lists the repository.
    scopes_credentials: bool

    def event_of(self, delivery_id: str, event: str, payload: Mapping[str, Any]) -> Event | None:
        """The neutral event a stored delivery carries; None when it asks for nothing."""
        ...

    def commit_url(self, repository: str, sha: str) -> str:
        """Where people see the commit `sha` of `repository` ("owner/name") on the forge."""
        ...

    def file_url(self, repository: str, sha: str, path: str, line: int | None = None) -> str:
        """Where people read `path` at commit `sha`, at `line` when given."""
        ...

    async def housekeep(self, event: Housekeeping, engine: AsyncEngine) -> None:
        """Act on a forge-internal delivery (the `housekeeping` job)."""
        ...

    async def locate(self, name: str, engine: AsyncEngine) -> RepoRef:
        """The repository `owner/name` with the hint the forge keeps for it (an API
        submission has no delivery to carry one)."""
        ...

    async def clone_token(self, repo: RepoRef) -> str | None:
        """A token that may read the repository, or None to clone anonymously."""
        ...

    def clone_user(self) -> str:
        """The user name git sends with `clone_token`'s token in HTTP basic auth."""
        ...

    async def default_branch(self, repo: RepoRef) -> str:
        """The repository's default branch."""
        ...

    async def may_write(self, repo: RepoRef, login: str) -> bool:
        """Whether the forge user `login` may write to the repository (push, statuses)."""
        ...

    async def commit_author(self, repo: RepoRef, sha: str) -> str | None:
        """The forge login the commit's author is linked to, if any (the branch-head sweep)."""
        ...

    async def report(
        self, report: CommitReport, previous_id: int | None, repo: RepoRef
    ) -> int | None:
        """Show the report on the commit; return the forge's id of it for later updates."""
        ...

    async def answer_command(self, command: RunCommand, accepted: bool, reply: str | None) -> None:
        """Tell who wrote a `/ogdc run` comment what came of it: a reaction on the comment
        (accepted or not), and `reply`, when given, as a comment on the pull request."""
        ...


class SignatureCheck(Protocol):
    """A webhook signature check fed the body chunk by chunk as it arrives."""

    def update(self, chunk: bytes) -> None: ...

    def verify(self) -> tuple[str, ...]:
        """The hosts whose secret signed the body; raises `WebhookRejected` (401) for none."""
        ...


class Intake(Protocol):
    """One webhook route's forge rules; the generic handler in `api/webhooks.py` does the rest
    (body budget, store-before-ack, dedupe, metrics)."""

    forge_kind: str  # the route's and the metrics' name: "github"

    def disabled_reason(self) -> str | None:
        """Why the route accepts nothing (503), e.g. no webhook secret; None when it works."""
        ...

    def signature_check(self, headers: Mapping[str, str]) -> SignatureCheck:
        """A check for this delivery; raises `WebhookRejected` (401) when it carries none."""
        ...

    def parse_verified(
        self, headers: Mapping[str, str], body: bytes, matched: tuple[str, ...]
    ) -> Delivery:
        """The delivery of a verified body, its `forge` one of `matched`; `WebhookRejected`."""
        ...

    def is_ping(self, delivery: Delivery) -> bool:
        """Whether the delivery only checks the hook works (answered, not stored)."""
        ...

    def plan_work(self, delivery: Delivery) -> JobKind | None:
        """The job kind the delivery asks for, or None when it is acknowledged and ignored."""
        ...


class Forges:
    """The configured forge instances, by host (case-insensitive)."""

    def __init__(self, forges: Iterable[Forge] = ()) -> None:
        self._by_host: dict[str, Forge] = {}
        for forge in forges:
            self._by_host[forge.host.lower()] = forge

    def get(self, host: str | None) -> Forge | None:
        return self._by_host.get(host.lower()) if host else None

    def __iter__(self) -> Iterator[Forge]:
        return iter(self._by_host.values())

    def __len__(self) -> int:
        return len(self._by_host)
