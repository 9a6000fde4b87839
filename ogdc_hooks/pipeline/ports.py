"""What the pipeline needs from the outside world, stated as small protocols.

The pipeline never names Argo's HTTP details: `argo/` provides an object of this
shape, and the pipeline's tests run against the fake server through the real
adapter. Forges have their own seam, `forges/base.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from ogdc_hooks.failure import Failure
from ogdc_hooks.runstate import Partitions, Progress, WorkflowChange, WorkflowSnapshot


class WorkflowEngine(Protocol):
    """Where rendered workflows run (the Argo Server)."""

    async def lint(self, workflow: dict[str, Any]) -> str | None:
        """What the engine's own validator finds wrong with the workflow; None: nothing."""
        ...

    async def submit(self, workflow: dict[str, Any]) -> str:
        """Create the workflow; return its name."""
        ...

    async def find_by_run(self, run_id: str) -> str | None:
        """The name of the workflow labelled with this run id, if one was created."""
        ...

    async def progress(self, name: str) -> Progress | None:
        """Where the workflow stands now; None when it no longer exists."""
        ...

    async def partitions(self, name: str) -> list[Partitions] | None:
        """The workflow's fan-out steps and how their partitions stand; None when it no
        longer exists."""
        ...

    async def archived_progress(self, run_id: str) -> Progress | None:
        """Where the run's workflow ended, as the engine archived it after deleting it; None
        if it did not."""
        ...

    async def stop(self, name: str, message: str) -> None:
        """Stop the workflow (nothing to do when it has completed or no longer exists)."""
        ...

    async def retry(self, name: str) -> None:
        """Run the failed steps of the failed workflow again (succeeded ones are kept);
        `PermanentError` when the engine refuses (not failed, or gone)."""
        ...

    async def output_url(self, name: str, artifact: str) -> str | None:
        """Where the named output artifact of a finished workflow can be downloaded."""
        ...

    async def failure(self, name: str, *, lines: int, strict: bool = True) -> Failure | None:
        """Why the finished workflow failed, with its failed steps' last `lines` of log; None
        when it no longer exists. `strict`: raise transient errors rather than note them."""
        ...

    def changes(self) -> AsyncIterator[WorkflowChange | WorkflowSnapshot]:
        """Every workflow of ours at first (a snapshot), then every change to one, until the
        stream ends; the next call resumes where this one ended (or snapshots again)."""
        ...
