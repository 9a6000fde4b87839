"""One check for a big push: the `summary` job, and which runs it stands in for.

A push that changes more than OGDC_SUMMARY_CHECK_THRESHOLD recipes would put a
check per recipe on the commit, each created and updated through its run: with
hundreds of recipes that is more writes than GitHub's secondary limits allow in
an hour. Instead, such a push's runs are shown by one summary check listing every
recipe (name, state, link to its workflow), updated at most once every
OGDC_SUMMARY_CHECK_SECONDS; a run of it gets a check of its own only when it fails
(so that its problems, annotations and re-run button are there). The summary job
is one per commit: changes while it waits fold into its next update.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ogdc_hooks.forges.base import CommitReport, RepoRef
from ogdc_hooks.forges.write_budget import WriteBudget
from ogdc_hooks.jobs.kinds import enqueue_summary
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline.commit_report import PUSH_CHECK, workflow_url
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.store import RUNS, RunRecord
from ogdc_hooks.runstate import RunState

SUMMARY_CHECK = f"{PUSH_CHECK} summary"  # no slash: no recipe's check can have this name
SUMMARY_ID = "summary"  # its external_id, to find it again on the commit
SUMMARY_BYTES = 60_000  # whole lines within GitHub's 65535-byte output.summary
_NOTE_ROOM = 100  # kept for the note saying how many did not fit
FAILURES = frozenset(
    {RunState.FAILED, RunState.INVALID, RunState.ERROR, RunState.TIMED_OUT, RunState.REJECTED}
)
# The order of the sections: what needs a look first.
_ORDER = (
    RunState.FAILED,
    RunState.TIMED_OUT,
    RunState.ERROR,
    RunState.INVALID,
    RunState.REJECTED,
    RunState.RUNNING,
    RunState.SUBMITTED,
    RunState.QUEUED,
    RunState.SUCCEEDED,
    RunState.DRY_RUN,
)


@dataclass(frozen=True)
class Entry:
    """One recipe of the push, as the summary lists it."""

    recipe: str
    state: RunState
    workflow_name: str | None


def _same_commit(forge: str, repository: str, commit_sha: str) -> list[ColumnElement[bool]]:
    return [
        RUNS.c.forge == forge,
        RUNS.c.repository == repository,
        RUNS.c.commit_sha == commit_sha,
        RUNS.c.recipe != "",
        RUNS.c.reports,
    ]


async def _pushed_recipes(connection: AsyncConnection, run: RunRecord) -> int:
    where = _same_commit(run.forge, run.repository, run.commit_sha)
    query = select(func.count()).where(*where, RUNS.c.trigger == "push")
    return int((await connection.execute(query)).scalar_one())


async def folded_into_summary(pipeline: Pipeline, run: RunRecord) -> bool:
    """Whether the run is one of a big push's: then its summary is asked for, and True
    when the run needs no check of its own (it has not failed). A push creates all its
    runs before any is reported, so every one of them sees how big the push is; re-runs
    are reported on their own, over the failed check they replace."""
    if run.trigger != "push" or not run.recipe:
        return False
    async with pipeline.database.engine.begin() as connection:
        if await _pushed_recipes(connection, run) <= pipeline.settings.summary_check_threshold:
            return False
        await enqueue_summary(
            connection, run.forge, run.repository, run.commit_sha, run.installation_id
        )
    return run.state not in FAILURES


async def _entries(
    connection: AsyncConnection, forge: str, repository: str, commit_sha: str
) -> list[Entry]:
    """The latest attempt of every recipe at the commit (only the columns shown)."""
    query = (
        select(RUNS.c.recipe, RUNS.c.state, RUNS.c.workflow_name)
        .where(*_same_commit(forge, repository, commit_sha))
        .distinct(RUNS.c.recipe)
        .order_by(RUNS.c.recipe, RUNS.c.attempt.desc())
    )
    rows = (await connection.execute(query)).all()
    return [Entry(row.recipe, RunState(row.state), row.workflow_name) for row in rows]


def overall(states: Counter[RunState]) -> RunState:
    """The summary's state: unfinished while any run is, then failed if any failed."""
    if states[RunState.RUNNING] or states[RunState.SUBMITTED]:
        return RunState.RUNNING
    if states[RunState.QUEUED]:
        return RunState.QUEUED
    if any(states[state] for state in FAILURES):
        return RunState.FAILED
    return RunState.SUCCEEDED if states[RunState.SUCCEEDED] else RunState.DRY_RUN


def _line(entry: Entry, ui_base: str | None, namespace: str) -> str:
    name = "`" + entry.recipe.replace("`", "'") + "`"
    url = workflow_url(ui_base, namespace, entry.workflow_name)
    return f"- [{name}]({url})\n" if url else f"- {name}\n"


def summary_text(
    entries: Sequence[Entry], commit_sha: str, *, ui_base: str | None, namespace: str
) -> str:
    """Every recipe by state (failures first), each linked to its workflow, in whole lines
    within `SUMMARY_BYTES`; what does not fit is counted at the end."""
    head = (
        f"This push changed {len(entries)} recipes at `{commit_sha[:12]}`: they are listed "
        f"here rather than each in a check of its own; a failed one also has its own check "
        f"(`{PUSH_CHECK}/<recipe>`).\n"
    )
    parts, size, left = [head], len(head.encode()), len(entries)
    for state in _ORDER:
        group = [entry for entry in entries if entry.state is state]
        if not group:
            continue
        heading = f"\n### {state.value} ({len(group)})\n"
        parts.append(heading)
        size += len(heading.encode())
        for entry in group:
            line = _line(entry, ui_base, namespace)
            if size + len(line.encode()) > SUMMARY_BYTES - _NOTE_ROOM:
                parts.append(f"\n... and {left} more (GitHub's size limit); see the runs API.\n")
                return "".join(parts)
            parts.append(line)
            size += len(line.encode())
            left -= 1
    return "".join(parts)


def summary_report(
    entries: Sequence[Entry],
    repository: str,
    commit_sha: str,
    *,
    ui_base: str | None,
    namespace: str,
) -> CommitReport:
    states = Counter(entry.state for entry in entries)
    counts = ", ".join(f"{states[state]} {state.value}" for state in _ORDER if states[state])
    return CommitReport(
        repository=repository,
        commit_sha=commit_sha,
        name=SUMMARY_CHECK,
        state=overall(states),
        title=f"{len(entries)} recipes: {counts}",
        summary=summary_text(entries, commit_sha, ui_base=ui_base, namespace=namespace),
        external_id=SUMMARY_ID,
    )


async def handle_summary(pipeline: Pipeline, job: Job) -> None:
    """Show the push's recipes as they are now, at most once per OGDC_SUMMARY_CHECK_SECONDS
    (`Deferred` otherwise: the job runs again then, with whatever changed meanwhile)."""
    forge_host, repository, commit_sha = (
        job.payload["forge"],
        job.payload["repository"],
        job.payload["commit"],
    )
    forge = pipeline.forges.get(forge_host)
    if forge is None:
        return
    interval = WriteBudget(
        pipeline.database.engine, ((1, float(pipeline.settings.summary_check_seconds)),)
    )
    await interval.take(f"summary:{forge_host}:{repository}:{commit_sha}", "the summary check")
    async with pipeline.database.engine.connect() as connection:
        entries = await _entries(connection, forge_host, repository, commit_sha)
    if not entries:
        return
    settings = pipeline.settings
    report = summary_report(
        entries,
        repository,
        commit_sha,
        ui_base=settings.argo_ui_base,
        namespace=settings.argo_namespace,
    )
    await forge.report(report, None, RepoRef(forge_host, repository, job.payload["installation"]))
