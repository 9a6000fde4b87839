"""The resync's cost is what changed: unchanged runs are compared, not loaded or written,
and between full passes only the runs that may have changed unrecorded are read.

Real PostgreSQL; the workflow engine is a stand-in recording what it is asked.
"""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import event, text

from ogdc_hooks.db.engine import Database
from ogdc_hooks.metrics import Metrics
from ogdc_hooks.pipeline import follow, store
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.runstate import Progress, RunState, WorkflowChange, WorkflowSnapshot
from tests.support.waiting import wait_for

BIG = {"spec": {"templates": [{"name": "main", "script": {"source": "x" * 4096}}]}}


class _Engine:
    """Answers that every workflow asked about has vanished, and records every call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def progress(self, name: str) -> Progress | None:
        self.calls.append(f"progress {name}")
        return None

    async def archived_progress(self, run_id: str) -> Progress | None:
        self.calls.append(f"archive {run_id}")
        return None

    async def stop(self, name: str, message: str) -> None:
        self.calls.append(f"stop {name}")


def _pipeline(db: Database, engine: _Engine) -> Pipeline:
    settings = SimpleNamespace(run_deadline_hours=48.0)
    return cast(
        Pipeline,
        SimpleNamespace(database=db, settings=settings, workflows=engine, metrics=Metrics()),
    )


async def _runs(db: Database, count: int, workflow: dict[str, Any] = BIG) -> list[str]:
    """`count` running runs with a rendered workflow of a few KiB; their workflow names."""
    names = []
    async with db.engine.begin() as connection:
        for index in range(count):
            new = store.NewRun(
                forge="github.com",
                repository="qgnet/recipes",
                clone_url="https://github.invalid/qgnet/recipes.git",
                commit_sha=uuid.uuid4().hex,
                recipe=f"recipes/r{index}",
                trigger="push",
                state=RunState.RUNNING,
            )
            run = await store.create_run(connection, new)
            assert run is not None
            names.append(f"wf-{run.id.hex[:8]}")
            await store.update_fields(
                connection, run.id, workflow=workflow, workflow_name=names[-1], progress="1/2"
            )
    return names


def _heard(names: list[str]) -> follow.Following:
    following = follow.Following()
    following.seen = {name: Progress(RunState.RUNNING, steps="1/2") for name in names}
    return following


async def test_a_resync_of_unchanged_runs_loads_no_record_and_writes_nothing(
    db: Database,
) -> None:
    names = await _runs(db, 23)
    statements: list[tuple[str, tuple[str, ...]]] = []

    def executed(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        columns = tuple(c[0] for c in cursor.description or ())
        statements.append((statement.split(None, 1)[0].upper(), columns))

    event.listen(db.engine.sync_engine, "after_cursor_execute", executed)
    try:
        engine = _Engine()
        await follow.resync(_pipeline(db, engine), _heard(names), page=5)
    finally:
        event.remove(db.engine.sync_engine, "after_cursor_execute", executed)
    reads = [columns for verb, columns in statements if verb == "SELECT"]
    assert len(reads) == 6  # five pages of 5, the last partly full, and the empty one
    assert all("workflow" not in columns and "message" not in columns for columns in reads)
    assert {verb for verb, _ in statements} <= {"SELECT", "BEGIN", "ROLLBACK"}
    assert engine.calls == []


async def test_a_resync_acts_on_the_runs_that_changed_across_pages(db: Database) -> None:
    names = await _runs(db, 12)
    [late] = await _runs(db, 1, {"spec": {"activeDeadlineSeconds": 60}})
    async with db.engine.begin() as connection:  # submitted two minutes ago
        for table, run in (("runs", "id"), ("run_events", "run_id")):
            await connection.execute(
                text(
                    f"UPDATE {table} SET {'created_at' if table == 'runs' else 'at'} ="
                    f" now() - interval '2 minutes' WHERE {run} IN"
                    " (SELECT id FROM runs WHERE workflow_name = :n)"
                ),
                {"n": late},
            )
    following = _heard([*names, late])
    ended, stepped, gone = names[1], names[6], names[11]
    following.seen[ended] = Progress(RunState.SUCCEEDED)
    following.seen[stepped] = Progress(RunState.RUNNING, steps="2/2")
    del following.seen[gone]
    engine = _Engine()
    await follow.resync(_pipeline(db, engine), following, page=4)
    states = {}
    for name in [*names, late]:
        run = await store.get_run_by_workflow(db.engine, name)
        assert run is not None
        states[name] = (run.state, run.progress)
    assert states.pop(ended)[0] is RunState.SUCCEEDED
    assert states.pop(stepped) == (RunState.RUNNING, "2/2")
    assert states.pop(gone)[0] is RunState.ERROR  # vanished, no archived copy
    assert states.pop(late)[0] is RunState.TIMED_OUT  # its own deadline, read by the query
    assert set(states.values()) == {(RunState.RUNNING, "1/2")}
    assert sorted(engine.calls) == sorted(
        [f"progress {gone}", f"stop {late}", *[c for c in engine.calls if c.startswith("archive")]]
    )
    assert len([c for c in engine.calls if c.startswith("archive")]) == 1


class _Reads:
    """The workflow names of the unfinished runs the resync read (a spy on the store)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str | None] = []
        read = store.unfinished_runs

        async def spy(*args: Any, **kwargs: Any) -> list[store.Unfinished]:
            runs = await read(*args, **kwargs)
            self.names.extend(run.workflow_name for run in runs)
            return runs

        monkeypatch.setattr(store, "unfinished_runs", spy)


async def _submitted(db: Database) -> str:
    """A queued run moved to submitted, as the submit job does; its workflow's name."""
    async with db.engine.begin() as connection:
        new = store.NewRun(
            forge="github.com",
            repository="qgnet/recipes",
            clone_url="https://github.invalid/qgnet/recipes.git",
            commit_sha=uuid.uuid4().hex,
            recipe="recipes/new",
            trigger="push",
        )
        run = await store.create_run(connection, new)
        assert run is not None
        name = f"wf-{run.id.hex[:8]}"
        await store.change_state(
            connection, run.id, RunState.SUBMITTED, "created", workflow_name=name
        )
    return name


async def _state(db: Database, name: str) -> RunState:
    run = await store.get_run_by_workflow(db.engine, name)
    assert run is not None
    return run.state


async def test_an_incremental_pass_with_nothing_heard_reads_no_run_and_asks_argo_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = await _runs(db, 12)
    engine, following = _Engine(), _heard(names)
    pipeline = _pipeline(db, engine)
    since = await store.last_event(db.engine)
    await follow.resync(pipeline, following, page=5)
    reads = _Reads(monkeypatch)
    await follow.resync(pipeline, following, page=5, since=since)
    assert reads.names == []
    assert engine.calls == []


async def test_an_incremental_pass_reads_the_runs_of_the_unsettled_workflows(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = await _runs(db, 12)
    engine, following = _Engine(), _heard(names)
    since = await store.last_event(db.engine)
    unsettled = set(names[2:9])  # over two pages of names
    following.unsettled = set(unsettled)
    following.seen[names[4]] = Progress(RunState.SUCCEEDED)
    following.seen[names[10]] = Progress(RunState.SUCCEEDED)  # heard, recorded: not looked at
    reads = _Reads(monkeypatch)
    await follow.resync(_pipeline(db, engine), following, page=5, since=since)
    assert sorted(n for n in reads.names if n) == sorted(unsettled)
    assert await _state(db, names[4]) is RunState.SUCCEEDED
    assert await _state(db, names[10]) is RunState.RUNNING
    assert following.unsettled == set()
    assert engine.calls == []


async def test_a_run_submitted_since_the_pass_before_and_never_heard_of_is_read_from_argo(
    db: Database,
) -> None:
    names = await _runs(db, 6)
    engine, following = _Engine(), _heard(names)
    pipeline = _pipeline(db, engine)
    since = await store.last_event(db.engine)
    await follow.resync(pipeline, following)
    unheard = await _submitted(db)
    await follow.resync(pipeline, following, since=since)
    assert engine.calls[0] == f"progress {unheard}"  # gone: read from the archive, then ended
    assert [c.split()[0] for c in engine.calls] == ["progress", "archive"]
    assert await _state(db, unheard) is RunState.ERROR


class _Unreachable(_Engine):
    """Argo's archive cannot be reached the first time it is asked."""

    async def archived_progress(self, run_id: str) -> Progress | None:
        if not self.calls:
            self.calls.append("unreachable")
            raise ConnectionError("archive unreachable")
        return await super().archived_progress(run_id)


async def test_a_change_that_could_not_be_recorded_is_compared_on_the_next_pass(
    db: Database,
) -> None:
    names = await _runs(db, 4)
    engine, following = _Unreachable(), _heard(names)
    pipeline = _pipeline(db, engine)
    since = await store.last_event(db.engine)
    run = await store.get_run_by_workflow(db.engine, names[1])
    assert run is not None
    gone = WorkflowChange(run.id, names[1], Progress(RunState.RUNNING), deleted=True)
    following.hear(gone)
    following.waiting[gone.name] += 1
    queue = asyncio.Queue[WorkflowChange]()
    await queue.put(gone)
    recorder = asyncio.create_task(follow._record(pipeline, following, queue))
    try:
        await queue.join()
    finally:
        recorder.cancel()
    assert following.unsettled == {names[1]}
    assert await _state(db, names[1]) is RunState.RUNNING  # the archive could not be read
    await follow.resync(pipeline, following, since=since)
    assert await _state(db, names[1]) is RunState.ERROR  # vanished, no archived copy
    assert following.unsettled == set()


async def test_a_snapshot_makes_the_next_pass_full(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = await _runs(db, 3)
    engine, following = _Engine(), _heard(names)
    pipeline = _pipeline(db, engine)
    monkeypatch.setattr(follow, "FULL_EVERY", 1_000_000)  # no full pass but a snapshot's
    registry = pipeline.metrics.registry

    def done(kind: str, more_than: float) -> bool:
        passes = registry.get_sample_value("ogdc_run_follow_resyncs_total", {"kind": kind})
        return (passes or 0) > more_than

    poll = asyncio.create_task(follow._poll(pipeline, following, interval=0.01))
    try:
        await wait_for(lambda: done("incremental", 2), what="incremental passes")
        assert done("full", 0) and not done("full", 1)  # the first pass only
        heard = [
            WorkflowChange(uuid.uuid4(), name, following.seen[name]) for name in names[1:]
        ]  # the list no longer shows names[0]'s workflow, and nothing else records that
        following.replace(WorkflowSnapshot(tuple(heard)))
        await wait_for(lambda: done("full", 1), what="a full pass after the snapshot")
    finally:
        poll.cancel()
    assert await _state(db, names[0]) is RunState.ERROR
    assert engine.calls[0] == f"progress {names[0]}"
