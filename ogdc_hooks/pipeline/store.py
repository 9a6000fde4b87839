"""The run store: one row per (repository, commit, recipe, attempt) and its state history.

Every state change is recorded as a `run_events` row and asks for a report job
(`report:<run id>`) in the same transaction, so the forge hears of every change
and a crash between the two cannot happen. A report refused for now is retried
until the forge takes it (`jobs.kinds.REPORT_ATTEMPTS`), so no check is left behind.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ARRAY, String, Table, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ogdc_hooks.db.tables import Delivery, Run, RunEvent
from ogdc_hooks.forges.base import RepoRef
from ogdc_hooks.jobs.kinds import enqueue_prepare, enqueue_report
from ogdc_hooks.runstate import RunState

RUNS = cast(Table, Run.__table__)
EVENTS = cast(Table, RunEvent.__table__)
DELIVERIES = cast(Table, Delivery.__table__)
# When the engine took the run: its last submitted event (a retry of its failed steps submits
# it again), else, if the watch saw it first, its first running event.
_SUBMITTED_AT = func.coalesce(
    select(func.max(EVENTS.c.at))
    .where(EVENTS.c.run_id == RUNS.c.id, EVENTS.c.state == "submitted")
    .scalar_subquery(),
    select(func.min(EVENTS.c.at))
    .where(EVENTS.c.run_id == RUNS.c.id, EVENTS.c.state == "running")
    .scalar_subquery(),
)


@dataclass(frozen=True)
class RunRecord:
    """A row of `runs`, detached from the database."""

    id: uuid.UUID
    forge: str  # the forge host
    repository: str
    clone_url: str
    commit_sha: str
    ref: str | None
    recipe: str
    attempt: int
    trigger: str
    requested_by: str | None
    overwrite: bool
    dry_run: bool
    state: RunState
    message: str | None
    workflow_name: str | None
    workflow: dict[str, Any] | None
    problems: list[dict[str, Any]] | None
    check_run_id: int | None
    report_error: str | None
    installation_id: int | None
    delivery_id: str | None
    reports: bool
    progress: str | None
    created_at: datetime
    updated_at: datetime
    failure: dict[str, Any] | None = None  # `failure.FailureDetails` as JSON, once read
    output_url: str | None = None  # where a succeeded temporary output's zip is served
    base_sha: str | None = None
    base_workflow: dict[str, Any] | None = None
    pull_request: int | None = None
    recipe_facts: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Any) -> RunRecord:
        return cls.from_mapping(dict(row._mapping))

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> RunRecord:
        values["state"] = RunState(values["state"])
        return cls(**values)


@dataclass(frozen=True)
class NewRun:
    """What is known of a run when it is created."""

    forge: str  # the forge host (for a plain URL, its host)
    repository: str
    clone_url: str
    commit_sha: str
    recipe: str
    trigger: str  # push | rerequest | api | pull_request | merge_group | comment
    ref: str | None = None
    attempt: int = 1
    requested_by: str | None = None
    overwrite: bool = False
    dry_run: bool = False
    installation_id: int | None = None
    delivery_id: str | None = None
    reports: bool = True
    state: RunState = RunState.QUEUED
    message: str | None = None
    base_sha: str | None = None  # what the preview's diff compares with
    pull_request: int | None = None


async def create_run(connection: AsyncConnection, new: NewRun) -> RunRecord | None:
    """Insert the run unless its identity exists (a retried job); None when it did."""
    values = {"id": uuid.uuid4(), **new.__dict__, "state": new.state.value}
    row = (
        await connection.execute(
            upsert(RUNS)
            .values(values)
            .on_conflict_do_nothing(constraint="runs_identity_key")
            .returning(*RUNS.c)
        )
    ).first()
    if row is None:
        return None
    await connection.execute(
        insert(EVENTS).values(run_id=row.id, state=new.state.value, message=new.message)
    )
    await enqueue_report(connection, row.id)
    return RunRecord.from_row(row)


async def latest_attempt(
    connection: AsyncConnection, forge: str, repository: str, commit_sha: str, recipe: str
) -> int:
    """The highest attempt number of a recipe at a commit (0 when it never ran)."""
    latest = (
        await connection.execute(
            select(func.max(RUNS.c.attempt)).where(
                RUNS.c.forge == forge,
                RUNS.c.repository == repository,
                RUNS.c.commit_sha == commit_sha,
                RUNS.c.recipe == recipe,
            )
        )
    ).scalar_one()
    return int(latest or 0)


async def create_attempt(connection: AsyncConnection, new: NewRun) -> RunRecord:
    """Create the next attempt of a recipe at a commit."""
    while True:
        latest = await latest_attempt(
            connection, new.forge, new.repository, new.commit_sha, new.recipe
        )
        run = await create_run(connection, dataclasses.replace(new, attempt=latest + 1))
        if run is not None:  # else a concurrent request took that number: take the next
            return run


async def create_next_attempt(connection: AsyncConnection, new: NewRun) -> RunRecord:
    """Create the next attempt of a recipe at a commit, queued for preparing (a re-run or an
    API submission)."""
    run = await create_attempt(connection, new)
    await enqueue_prepare(connection, run.id)
    return run


async def find_run(connection: AsyncConnection, new: NewRun) -> RunRecord | None:
    """The run with `new`'s identity (forge, repository, commit, recipe, attempt)."""
    row = (
        await connection.execute(
            select(RUNS).where(
                RUNS.c.forge == new.forge,
                RUNS.c.repository == new.repository,
                RUNS.c.commit_sha == new.commit_sha,
                RUNS.c.recipe == new.recipe,
                RUNS.c.attempt == new.attempt,
            )
        )
    ).first()
    return RunRecord.from_row(row) if row else None


async def find_change_run(connection: AsyncConnection, new: NewRun) -> RunRecord | None:
    """The newest run of `new`'s recipe at its commit made for the same change (trigger, pull
    request and base): a pull request delivered again at the same head needs no new run."""
    row = (
        await connection.execute(
            select(RUNS)
            .where(
                RUNS.c.forge == new.forge,
                RUNS.c.repository == new.repository,
                RUNS.c.commit_sha == new.commit_sha,
                RUNS.c.recipe == new.recipe,
                RUNS.c.trigger == new.trigger,
                RUNS.c.base_sha.is_not_distinct_from(new.base_sha),
                RUNS.c.pull_request.is_not_distinct_from(new.pull_request),
            )
            .order_by(RUNS.c.attempt.desc())
            .limit(1)
        )
    ).first()
    return RunRecord.from_row(row) if row else None


async def find_delivery_run(connection: AsyncConnection, new: NewRun) -> RunRecord | None:
    """The run of `new`'s recipe that `new`'s delivery asked for already (a repeated job)."""
    row = (
        await connection.execute(
            select(RUNS).where(
                RUNS.c.forge == new.forge,
                RUNS.c.delivery_id == new.delivery_id,
                RUNS.c.recipe == new.recipe,
                RUNS.c.trigger == new.trigger,
            )
        )
    ).first()
    return RunRecord.from_row(row) if row else None


async def get_run(engine: AsyncEngine, run_id: uuid.UUID) -> RunRecord | None:
    async with engine.connect() as connection:
        row = (await connection.execute(select(RUNS).where(RUNS.c.id == run_id))).first()
    return RunRecord.from_row(row) if row else None


async def read_for_report(connection: AsyncConnection, run_id: uuid.UUID) -> RunRecord | None:
    """The run as it is now, under a share lock held until the caller commits: a state
    change in flight is waited for (and seen), one started later waits for the caller."""
    statement = select(RUNS).where(RUNS.c.id == run_id).with_for_update(read=True)
    row = (await connection.execute(statement)).first()
    return RunRecord.from_row(row) if row else None


async def get_run_by_workflow(engine: AsyncEngine, workflow_name: str) -> RunRecord | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(select(RUNS).where(RUNS.c.workflow_name == workflow_name))
        ).first()
    return RunRecord.from_row(row) if row else None


async def change_state(
    connection: AsyncConnection,
    run_id: uuid.UUID,
    state: RunState,
    message: str | None = None,
    *,
    only_from: Collection[RunState] | None = None,
    **fields: Any,
) -> bool:
    """Move a run to `state` (when it is in one of `only_from`), record it, ask for a report.

    False when the run was not in an allowed state: a late or repeated event
    (an Argo watch replaying history, a retried job) changes nothing.
    """
    statement = (
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(state=state.value, message=message, updated_at=func.now(), **fields)
    )
    if only_from is not None:
        statement = statement.where(RUNS.c.state.in_([s.value for s in only_from]))
    if (await connection.execute(statement)).rowcount != 1:
        return False
    await connection.execute(
        insert(EVENTS).values(run_id=run_id, state=state.value, message=message)
    )
    await enqueue_report(connection, run_id)
    return True


async def record_progress(connection: AsyncConnection, run_id: uuid.UUID, steps: str) -> None:
    """Argo's "done/total" steps of a run, when they changed; no event, no report."""
    await connection.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id, RUNS.c.progress.is_distinct_from(steps))
        .values(progress=steps, updated_at=func.now())
    )


async def update_fields(connection: AsyncConnection, run_id: uuid.UUID, **fields: Any) -> None:
    """Record facts that are not state changes (rendered workflow, check run id, report error)."""
    await connection.execute(
        update(RUNS).where(RUNS.c.id == run_id).values(updated_at=func.now(), **fields)
    )


async def run_events(engine: AsyncEngine, run_id: uuid.UUID) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(EVENTS.c.state, EVENTS.c.message, EVENTS.c.at)
            .where(EVENTS.c.run_id == run_id)
            .order_by(EVENTS.c.id)
        )
        return [dict(row._mapping) for row in rows]


@dataclass(frozen=True)
class Unfinished:
    """What the resync compares of a run the engine has: no rendered workflow, no message."""

    id: uuid.UUID
    state: RunState
    workflow_name: str | None
    progress: str | None
    own_deadline: object  # the workflow's `spec.activeDeadlineSeconds` as stored, if any
    age_s: float  # seconds since it was submitted


async def unfinished_runs(
    engine: AsyncEngine,
    states: Sequence[RunState],
    after: uuid.UUID | None,
    limit: int,
    *,
    names: Sequence[str] | None = None,
    submitted_after: int | None = None,
) -> list[Unfinished]:
    """Up to `limit` runs in `states` with ids above `after` (a keyset page, by id), with
    their age since submission (by the database's clock); only the compared columns, so a
    page of thousands reads kilobytes, not their rendered workflows. Only those of the
    workflows in `names`, if given (by their unique index), and only those submitted after
    the event `submitted_after` (`last_event`), if given (by the events' key)."""
    since = func.coalesce(_SUBMITTED_AT, RUNS.c.created_at)
    statement = (
        select(
            RUNS.c.id,
            RUNS.c.state,
            RUNS.c.workflow_name,
            RUNS.c.progress,
            RUNS.c.workflow["spec"]["activeDeadlineSeconds"].label("own_deadline"),
            func.extract("epoch", func.now() - since).label("age_s"),
        )
        .where(RUNS.c.state.in_([s.value for s in states]))
        .order_by(RUNS.c.id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(RUNS.c.id > after)
    if names is not None:
        statement = statement.where(
            RUNS.c.workflow_name == any_(bindparam("names", list(names), ARRAY(String)))
        )
    if submitted_after is not None:
        submitted = select(EVENTS.c.run_id).where(
            EVENTS.c.id > submitted_after, EVENTS.c.state == RunState.SUBMITTED.value
        )
        statement = statement.where(RUNS.c.id.in_(submitted))
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [
        Unfinished(
            row.id,
            RunState(row.state),
            row.workflow_name,
            row.progress,
            row.own_deadline,
            float(row.age_s),
        )
        for row in rows
    ]


async def last_event(engine: AsyncEngine) -> int:
    """The newest state change's id (0 before any): what `unfinished_runs` reads after."""
    async with engine.connect() as connection:
        newest = (await connection.execute(select(func.max(EVENTS.c.id)))).scalar_one()
    return int(newest or 0)


async def seconds_since_submitted(connection: AsyncConnection, run_id: uuid.UUID) -> float | None:
    """How long the engine has had the run (for the duration histogram)."""
    value = (
        await connection.execute(
            select(func.extract("epoch", func.now() - _SUBMITTED_AT)).where(RUNS.c.id == run_id)
        )
    ).scalar_one_or_none()
    return None if value is None else float(value)


async def seconds_since_push(connection: AsyncConnection, run_id: uuid.UUID) -> float | None:
    """How long ago the delivery that asked for the run arrived (else the run was made)."""
    since = func.coalesce(DELIVERIES.c.received_at, RUNS.c.created_at)
    value = (
        await connection.execute(
            select(func.extract("epoch", func.now() - since))
            .select_from(
                RUNS.outerjoin(
                    DELIVERIES,
                    (DELIVERIES.c.id == RUNS.c.delivery_id) & (DELIVERIES.c.forge == RUNS.c.forge),
                )
            )
            .where(RUNS.c.id == run_id)
        )
    ).scalar_one_or_none()
    return None if value is None else float(value)


@dataclass(frozen=True)
class RunFilter:
    repository: str | None = None
    commit_sha: str | None = None
    recipe: str | None = None
    state: RunState | None = None
    ref: str | None = None  # the branch
    requested_by: str | None = None  # the pusher's (or submitter's) user name
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


async def list_runs(
    engine: AsyncEngine, where: RunFilter, *, limit: int, offset: int
) -> tuple[list[RunRecord], int]:
    """A page of runs, newest first, and the total matching."""
    conditions = [
        column == value
        for column, value in (
            (RUNS.c.repository, where.repository),
            (RUNS.c.commit_sha, where.commit_sha),
            (RUNS.c.recipe, where.recipe),
            (RUNS.c.state, where.state.value if where.state else None),
            (RUNS.c.ref, where.ref),
            (RUNS.c.requested_by, where.requested_by),
        )
        if value is not None
    ]
    if where.created_from is not None:
        conditions.append(RUNS.c.created_at >= where.created_from)
    if where.created_before is not None:
        conditions.append(RUNS.c.created_at < where.created_before)
    async with engine.connect() as connection:
        total = (
            await connection.execute(select(func.count()).select_from(RUNS).where(*conditions))
        ).scalar_one()
        rows = await connection.execute(
            select(RUNS)
            .where(*conditions)
            .order_by(RUNS.c.created_at.desc(), RUNS.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [RunRecord.from_row(row) for row in rows], int(total)


def repo_of(run: RunRecord) -> RepoRef:
    """The run's repository on its forge, with the hint the forge gave."""
    return RepoRef(run.forge, run.repository, run.installation_id)
