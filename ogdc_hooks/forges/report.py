"""What the pipeline tells a forge about one recipe at one commit; forge-neutral.

The pipeline builds a `CommitReport` and hands it to a `Reporter`; how that
becomes a GitHub check run or commit status lives in `forges/github/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from ogdc_hooks.recipes.problems import Problem


class RunState(StrEnum):
    """Where a run is; the same words are stored in `runs.state` and shown by the API."""

    QUEUED = "queued"  # accepted at intake, not yet worked on
    SUBMITTED = "submitted"  # created in Argo, not yet running (Pending)
    RUNNING = "running"  # Argo says Running
    SUCCEEDED = "succeeded"  # Argo says Succeeded
    FAILED = "failed"  # Argo says Failed or Error
    INVALID = "invalid"  # the recipe did not validate or render
    REJECTED = "rejected"  # the pusher is not a known, active user
    ERROR = "error"  # could not be carried out: permanent error, vanished workflow
    TIMED_OUT = "timed_out"  # unfinished past its deadline; its workflow was stopped
    DRY_RUN = "dry_run"  # rendered and stored, deliberately not submitted

    @property
    def finished(self) -> bool:
        return self not in (RunState.QUEUED, RunState.SUBMITTED, RunState.RUNNING)


@dataclass(frozen=True)
class CommitReport:
    """One recipe's state on one commit, as the forge should show it.

    `name` is the check name / status context (`ogdc/<recipe directory>`, or
    `ogdc` for a push-wide verdict). `problems` become annotations where the
    forge supports them.
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


class Reporter(Protocol):
    """A forge's way of showing reports on a commit; one per repository and credentials."""

    async def report(self, report: CommitReport, previous_id: int | None) -> int | None:
        """Create or update the report; return the forge's id for later updates (or None)."""
        ...
