"""Why a run failed, in the words its check, `GET /runs/{id}` and the CLI share; pure.

The workflow engine (`argo/failures.py`) classifies a failed run from its failed
steps and reads the tail of each step's log; the pipeline masks secrets in it
(`masked`) before it is stored (`runs.failure`, as `to_json` writes it) and shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ogdc_hooks.redact import FORGE_MARK, SECRET_PAIR, Redactor, forge_patterns

MAX_STEPS = 5  # failed steps whose logs are read and shown: the first ones say most

# What a log tail is masked for before it is stored or shown: the configured secrets
# (given per call), keys, JWTs, Authorization headers, bearer tokens, URL credentials
# and `password=...`-like pairs.
_REDACTOR = Redactor((*forge_patterns(), (SECRET_PAIR, rf"\1{FORGE_MARK}")), FORGE_MARK)


@dataclass(frozen=True)
class StepFailure:
    """One failed step: its name, the engine's node and message, and its log's last lines."""

    step: str
    node: str
    message: str = ""
    log_tail: tuple[str, ...] = ()
    pod_gone: bool = False  # the log came back empty: the pod was deleted, or printed nothing
    log_error: str | None = None  # why the log could not be read, when it could not


@dataclass(frozen=True)
class Failure:
    """A failed run: what kind of failure, in one line why, what to try, and its steps."""

    classification: str  # e.g. "out of memory (OOMKilled)", "exit code 2"
    explanation: str
    advice: str
    steps: tuple[StepFailure, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Failure | None:
        """The stored failure; None for none (or one this version cannot read)."""
        if not data:
            return None
        try:
            steps = tuple(
                StepFailure(**{**step, "log_tail": tuple(step.get("log_tail") or ())})
                for step in data.get("steps") or ()
            )
            return cls(
                str(data["classification"]), str(data["explanation"]), str(data["advice"]), steps
            )
        except (KeyError, TypeError):
            return None


def unreadable(error: str) -> Failure:
    """The failure of a run whose details Argo would not give (kept, so it is not asked again)."""
    return Failure(
        "failed",
        f"The failure details could not be read from Argo: {error}",
        "Open the Argo workflow link, or run the recipe again.",
    )


def masked(failure: Failure, secrets: Iterable[str]) -> Failure:
    """`failure` with secrets masked in every message and log line."""
    hidden = tuple(secrets)

    def mask(text: str) -> str:
        return _REDACTOR(text, hidden)

    steps = tuple(
        dataclasses.replace(
            step,
            message=mask(step.message),
            log_tail=tuple(mask(line) for line in step.log_tail),
            log_error=mask(step.log_error) if step.log_error else None,
        )
        for step in failure.steps
    )
    return dataclasses.replace(failure, explanation=mask(failure.explanation), steps=steps)
