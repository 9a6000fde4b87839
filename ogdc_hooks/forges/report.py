"""What the pipeline tells a forge about one recipe at one commit; forge-neutral.

The pipeline builds a `CommitReport` and hands it to a `Reporter`; how that
becomes a GitHub check run or commit status lives in `forges/github/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ogdc_hooks.recipes.problems import Problem
from ogdc_hooks.runstate import RunState

# RunState lives in the neutral ogdc_hooks.runstate; named here for the modules that report.
__all__ = ["CommitReport", "Reporter", "RunState"]


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
