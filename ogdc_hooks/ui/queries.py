"""What the dashboard reads beyond one run or a page of runs (`pipeline.store` has those):
each recipe's recent history, recent deliveries and the queue's figures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ogdc_hooks.db.tables import Job
from ogdc_hooks.pipeline.store import DELIVERIES, EVENTS, RUNS
from ogdc_hooks.runstate import RunState

JOBS = cast(Table, Job.__table__)
HISTORY = 20  # runs per recipe in its strip of badges
DELIVERIES_SHOWN = 50


@dataclass(frozen=True)
class PastRun:
    id: uuid.UUID
    state: RunState
    created_at: datetime
    seconds: float | None  # None while unfinished


@dataclass
class RecipeHistory:
    """A recipe of one repository and its last runs, newest first."""

    forge: str
    repository: str
    recipe: str
    runs: list[PastRun] = field(default_factory=list)


# When the run last changed state (its end, once finished); `updated_at` also moves for
# facts that are not state changes (a check run id, a report error).
_LAST_CHANGE = select(func.max(EVENTS.c.at)).where(EVENTS.c.run_id == RUNS.c.id).scalar_subquery()


async def last_changes(engine: AsyncEngine, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """When each run last changed state."""
    statement = (
        select(EVENTS.c.run_id, func.max(EVENTS.c.at))
        .where(EVENTS.c.run_id.in_(run_ids))
        .group_by(EVENTS.c.run_id)
    )
    async with engine.connect() as connection:
        return {run_id: at for run_id, at in await connection.execute(statement)}


async def recipe_histories(engine: AsyncEngine) -> list[RecipeHistory]:
    """Every recipe seen, by repository and path, with its last `HISTORY` runs."""
    place = (RUNS.c.forge, RUNS.c.repository, RUNS.c.recipe)
    rank = (
        func.row_number()
        .over(partition_by=place, order_by=(RUNS.c.created_at.desc(), RUNS.c.id))
        .label("rank")
    )
    changed = _LAST_CHANGE.label("changed_at")
    recent = select(*place, RUNS.c.id, RUNS.c.state, RUNS.c.created_at, changed, rank)
    ranked = recent.subquery()
    statement = (
        select(ranked)
        .where(ranked.c.rank <= HISTORY)
        .order_by(ranked.c.repository, ranked.c.recipe, ranked.c.forge, ranked.c.rank)
    )
    histories: dict[tuple[str, str, str], RecipeHistory] = {}
    async with engine.connect() as connection:
        for row in await connection.execute(statement):
            key = (row.forge, row.repository, row.recipe)
            history = histories.setdefault(key, RecipeHistory(*key))
            state = RunState(row.state)
            seconds = (row.changed_at - row.created_at).total_seconds() if state.finished else None
            history.runs.append(PastRun(row.id, state, row.created_at, seconds))
    return list(histories.values())


# What each stored answer (`deliveries.answer`) told the forge, in words.
ANSWER_WORDS = {
    "accepted": "202 accepted",
    "ignored": "200 ignored (event not handled)",
    "swept": "none: found by the branch-head sweep, not sent by the forge",
}


@dataclass(frozen=True)
class DeliveryRow:
    forge: str
    id: str
    event: str
    action: str | None
    repository: str | None
    received_at: datetime
    runs: list[dict[str, Any]]  # {"id", "recipe", "state"} of the runs it made
    answer: str  # what the forge was answered, in words (ANSWER_WORDS)
    repeats: int  # redeliveries of its id since, each answered 200
    repeated_at: datetime | None  # the last of those
    job: str | None  # its job's state (with the error it failed of), None: no job


def _job_words(state: str | None, error: str | None) -> str | None:
    if state == "failed" and error:
        return f"failed: {error}"
    return state


async def recent_deliveries(engine: AsyncEngine) -> list[DeliveryRow]:
    """The last deliveries, what each was answered and the state of the job it made."""
    made = (
        select(
            func.coalesce(
                func.json_agg(
                    func.json_build_object(
                        "id", RUNS.c.id, "recipe", RUNS.c.recipe, "state", RUNS.c.state
                    )
                ),
                func.json_build_array(),
            )
        )
        .where(and_(RUNS.c.delivery_id == DELIVERIES.c.id, RUNS.c.forge == DELIVERIES.c.forge))
        .scalar_subquery()
        .label("runs")
    )
    statement = (
        select(
            DELIVERIES.c.forge,
            DELIVERIES.c.id,
            DELIVERIES.c.event,
            DELIVERIES.c.action,
            DELIVERIES.c.repository,
            DELIVERIES.c.received_at,
            made,
            DELIVERIES.c.answer,
            DELIVERIES.c.repeats,
            DELIVERIES.c.repeated_at,
            JOBS.c.state.label("job_state"),
            JOBS.c.last_error,
        )
        .select_from(
            DELIVERIES.outerjoin(
                JOBS,  # the dedupe key of a delivery's job: jobs.kinds.delivery_key
                JOBS.c.dedupe_key == "delivery:" + DELIVERIES.c.forge + ":" + DELIVERIES.c.id,
            )
        )
        .order_by(DELIVERIES.c.received_at.desc())
        .limit(DELIVERIES_SHOWN)
    )
    async with engine.connect() as connection:
        rows = list(await connection.execute(statement))
    return [
        DeliveryRow(
            forge=row.forge,
            id=row.id,
            event=row.event,
            action=row.action,
            repository=row.repository,
            received_at=row.received_at,
            runs=row.runs,
            answer=ANSWER_WORDS.get(row.answer, row.answer),
            repeats=row.repeats,
            repeated_at=row.repeated_at,
            job=_job_words(row.job_state, row.last_error),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class QueueFigures:
    ready: int  # queued, may start now
    waiting: int  # queued for later (backoff, Retry-After)
    running: int
    failed: int  # given up for good
    oldest_ready: datetime | None


async def queue_figures(engine: AsyncEngine) -> QueueFigures:
    queued = JOBS.c.state == "queued"
    due = JOBS.c.run_after <= func.now()
    ready = and_(queued, due)

    def count(condition: Any) -> Any:
        return func.count().filter(condition)

    statement = select(
        count(ready).label("ready"),
        count(and_(queued, ~due)).label("waiting"),
        count(JOBS.c.state == "running").label("running"),
        count(JOBS.c.state == "failed").label("failed"),
        func.min(case((ready, JOBS.c.run_after))).label("oldest_ready"),
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).one()
    return QueueFigures(**row._mapping)
