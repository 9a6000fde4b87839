"""How runs read on the dashboard's pages: badges, durations, links, the rendered workflow
as highlighted YAML and its steps (pure, no I/O)."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import YamlLexer

from ogdc_hooks.forges.base import Forge
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.runstate import RunState

# The badge's colour class and its words: state is always written out, colour only helps.
BADGES: dict[RunState, tuple[str, str]] = {
    RunState.QUEUED: ("waiting", "queued"),
    RunState.SUBMITTED: ("waiting", "submitted"),
    RunState.RUNNING: ("running", "running"),
    RunState.SUCCEEDED: ("good", "succeeded"),
    RunState.FAILED: ("bad", "failed"),
    RunState.INVALID: ("bad", "invalid"),
    RunState.REJECTED: ("bad", "rejected"),
    RunState.ERROR: ("bad", "error"),
    RunState.TIMED_OUT: ("bad", "timed out"),
    RunState.CANCELLED: ("neutral", "cancelled"),
    RunState.DRY_RUN: ("neutral", "dry run"),
}
_HIGHLIGHT = HtmlFormatter(cssclass="highlight", nowrap=False)


def badge(state: RunState) -> tuple[str, str]:
    return BADGES[state]


def branch(ref: str | None) -> str:
    """`refs/heads/main` reads as `main`; other refs as they are."""
    if ref is None:
        return ""
    return ref.removeprefix("refs/heads/")


def seconds_between(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def run_seconds(run: RunRecord, last_change: datetime | None, now: datetime) -> float:
    """How long the run took (to its last state change), or has taken so far."""
    end = (last_change or run.updated_at) if run.state.finished else now
    return seconds_between(run.created_at, end)


def duration(seconds: float | None) -> str:
    """`42s`, `3m 05s`, `2h 07m`; empty when unknown."""
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def commit_url(forge: Forge | None, run: RunRecord) -> str | None:
    """The commit on its forge; None for a run of a plain git URL (no forge of ours)."""
    return forge.commit_url(run.repository, run.commit_sha) if forge else None


@dataclass(frozen=True)
class ShownProblem:
    where: str  # path:line:column
    text: str
    severity: str
    url: str | None


def problems(forge: Forge | None, run: RunRecord) -> list[ShownProblem]:
    """The run's stored problems, each linked to its file and line on the forge."""
    shown = []
    for problem in run.problems or []:
        path, line = str(problem.get("path", "")), problem.get("line")
        line_no = line if isinstance(line, int) else None
        key, message = problem.get("key_path") or "", str(problem.get("message", ""))
        shown.append(
            ShownProblem(
                where=f"{path}:{line_no or ''}:{problem.get('column') or ''}".rstrip(":"),
                text=f"{key}: {message}" if key else message,
                severity=str(problem.get("severity", "error")),
                url=forge.file_url(run.repository, run.commit_sha, path, line_no)
                if forge and path
                else None,
            )
        )
    return shown


def workflow_yaml(workflow: Mapping[str, Any]) -> str:
    """The rendered workflow as highlighted YAML in HTML (Pygments escapes every token)."""
    text = yaml.safe_dump(dict(workflow), sort_keys=False, allow_unicode=True, width=100)
    return str(highlight(text, YamlLexer(), _HIGHLIGHT))


def highlight_css() -> str:
    return str(_HIGHLIGHT.get_style_defs(".highlight"))


@dataclass(frozen=True)
class Step:
    """One task of the workflow's entry template, and the tasks it waits for."""

    name: str
    template: str
    after: tuple[str, ...]
    fans_out: bool  # withSequence / withParam / withItems


def steps(workflow: Mapping[str, Any]) -> list[Step]:
    """The entry template's DAG tasks (or steps, in order) as a list a person can follow."""
    spec = workflow.get("spec") or {}
    templates = {t.get("name"): t for t in spec.get("templates") or [] if isinstance(t, dict)}
    entry = templates.get(spec.get("entrypoint")) or {}
    found: list[Step] = []
    tasks = (entry.get("dag") or {}).get("tasks")
    if isinstance(tasks, list):
        for task in tasks:
            after = task.get("dependencies") or _depends_names(task.get("depends"))
            found.append(_step(task, tuple(after)))
        return found
    previous: tuple[str, ...] = ()
    for group in entry.get("steps") or []:
        names = []
        for task in group if isinstance(group, list) else [group]:
            found.append(_step(task, previous))
            names.append(str(task.get("name")))
        previous = tuple(names)
    return found


def _step(task: Mapping[str, Any], after: tuple[str, ...]) -> Step:
    fans_out = any(key in task for key in ("withSequence", "withParam", "withItems"))
    return Step(str(task.get("name")), str(task.get("template", "")), after, fans_out)


def _depends_names(depends: object) -> list[str]:
    """Task names in an Argo `depends` expression (`a && (b.Succeeded || c)`)."""
    if not isinstance(depends, str):
        return []
    words = re.findall(r"[A-Za-z0-9_-]+(?:\.[A-Za-z]+)?", depends)
    return [word.split(".")[0] for word in words]


def success_rate(states: Sequence[RunState]) -> float | None:
    """Share of finished runs that succeeded (dry runs do not count); None without any."""
    counted = [s for s in states if s.finished and s is not RunState.DRY_RUN]
    if not counted:
        return None
    return sum(s is RunState.SUCCEEDED for s in counted) / len(counted)


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None
