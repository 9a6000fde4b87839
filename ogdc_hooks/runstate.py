"""Where a run is, and how that reads to a person: one vocabulary for the API, CLI and checks.

`Progress` and `WorkflowChange` are what the workflow engine (`argo/`) hands the
pipeline about a run, so the pipeline never reads the engine's own objects.

`RunState` is stored in `runs.state` and shown by the API. `describe` turns a
state into the sentence every surface uses ("recipes/seal-tags: dry run,
rendered and stored, not submitted (...)"), and `EXIT_CODES` is how the CLI
ends for each (the README tabulates them). Pure: no I/O, importable anywhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import IntEnum, StrEnum


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
    CANCELLED = "cancelled"  # stopped on request, or superseded by a newer push

    @property
    def finished(self) -> bool:
        return self not in (RunState.QUEUED, RunState.SUBMITTED, RunState.RUNNING)


@dataclass(frozen=True)
class FailedStep:
    """A step of a run's workflow that failed, with the engine's reason."""

    name: str
    message: str


@dataclass(frozen=True)
class Progress:
    """Where one run's workflow stands, in our words (the engine's part of a run's story)."""

    state: RunState
    message: str | None = None
    failed_steps: tuple[FailedStep, ...] = ()
    steps: str | None = None  # "done/total" steps, e.g. the partitions of a parallel run

    @property
    def summary(self) -> str:
        """One human line: the message, then each failed step and its reason."""
        parts = [self.message] if self.message else []
        parts += [
            f"{step.name}: {step.message}" if step.message else step.name
            for step in self.failed_steps
        ]
        return "; ".join(parts) or self.state.value


@dataclass(frozen=True)
class Partitions:
    """The expanded tasks of one fan-out step of a workflow (a parallel recipe's
    partitions), counted by how they stand."""

    step: str
    done: int
    running: int
    failed: int

    @property
    def total(self) -> int:
        return self.done + self.running + self.failed


@dataclass(frozen=True)
class WorkflowChange:
    """The workflow engine says: run `run_id`'s workflow `name` is now at `progress`
    (`deleted`: it was deleted, carrying its last status)."""

    run_id: uuid.UUID
    name: str
    progress: Progress
    deleted: bool = False


@dataclass(frozen=True)
class WorkflowSnapshot:
    """Every workflow of our runs that the engine has now, as one list found them: what a
    follower knew before is replaced by this (a workflow not in it is gone)."""

    changes: tuple[WorkflowChange, ...]


# What each state means, as the second half of "<recipe>: <meaning>".
MEANINGS = {
    RunState.QUEUED: "queued, waiting to be validated and submitted",
    RunState.SUBMITTED: "submitted to Argo, waiting to start",
    RunState.RUNNING: "running in Argo",
    RunState.SUCCEEDED: "succeeded",
    RunState.FAILED: "failed in Argo",
    RunState.INVALID: "invalid, not submitted",
    RunState.REJECTED: "refused, not submitted",
    RunState.ERROR: "could not be carried out",
    RunState.TIMED_OUT: "timed out, its workflow was stopped",
    RunState.DRY_RUN: "dry run, rendered and stored, not submitted",
    RunState.CANCELLED: "cancelled, its workflow was stopped",
}


class ExitCode(IntEnum):
    """How `ogdc-hooks` ends for a run it reports on (1 and 2 are the CLI's own errors)."""

    OK = 0  # succeeded, or accepted and still on its way (without --wait)
    FAILED = 3  # failed in Argo, timed out, cancelled, or could not be carried out
    INVALID = 4  # invalid recipe, or refused
    DRY_RUN = 5  # rendered and stored, not submitted


EXIT_CODES = {
    RunState.QUEUED: ExitCode.OK,
    RunState.SUBMITTED: ExitCode.OK,
    RunState.RUNNING: ExitCode.OK,
    RunState.SUCCEEDED: ExitCode.OK,
    RunState.FAILED: ExitCode.FAILED,
    RunState.ERROR: ExitCode.FAILED,
    RunState.TIMED_OUT: ExitCode.FAILED,
    RunState.INVALID: ExitCode.INVALID,
    RunState.REJECTED: ExitCode.INVALID,
    RunState.DRY_RUN: ExitCode.DRY_RUN,
    RunState.CANCELLED: ExitCode.FAILED,
}


def describe(recipe: str, state: RunState, detail: str | None = None) -> str:
    """`recipe: meaning (detail)`, e.g. "recipes/x: invalid, not submitted (meta.yml:3: ...)"."""
    sentence = f"{recipe or 'the push'}: {MEANINGS[state]}"
    return f"{sentence} ({detail.rstrip('.')})" if detail else sentence
