"""The resync's cost is what changed: unchanged runs are compared, not loaded or written.

Real PostgreSQL; the workflow engine is a stand-in recording what it is asked.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import event, text

from ogdc_hooks.db.engine import Database
from ogdc_hooks.metrics import Metrics
from ogdc_hooks.pipeline import follow, store
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.runstate import Progress, RunState

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
