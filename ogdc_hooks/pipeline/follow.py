"""Following submitted workflows to their end: one list and a watch, and a resync that costs
what changed.

Every replica lists our workflows once (a snapshot) and watches the changes from the
list's resourceVersion, resuming the watch where it broke off (listing again only
when Argo has forgotten that version), so thousands of running workflows cost one
stream, not a request each. What it heard is kept per workflow (`Following`), and
each change is recorded as it is heard. Every `poll_interval` a resync compares runs
with what was heard: a run whose workflow was heard of is brought up to date with no
request to Argo; only one whose workflow the list and watch never showed is read on
its own (it vanished, or was created a moment ago). After a snapshot (which nothing
else records) and every `FULL_EVERY` passes (deadlines), every unfinished run is
compared; the passes between compare only what recording may have left behind: the
runs whose heard changes could not be recorded, and those submitted since the pass
before (a create race, a retry, a workflow never heard of), so they cost what changed.
State changes only move forward (`only_from`), so replicas and replayed events never
undo or repeat one.

Every run reaches an end. A workflow that vanished (Argo's TTL or garbage
collection deleted it) is looked up in Argo's workflow archive and the run ends
with the archived phase; with no archived copy either it ends as an error
saying so. A run still unfinished past its deadline (the workflow's own
`activeDeadlineSeconds`, else `OGDC_RUN_DEADLINE_HOURS`, counted from its
submission) is stopped in Argo and ends as timed out. One run that cannot be
read never holds up the others.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ogdc_hooks.jobs.backoff import retry_delay
from ogdc_hooks.jobs.errors import PermanentError
from ogdc_hooks.jobs.supervise import Work
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.runstate import Progress, RunState, WorkflowChange, WorkflowSnapshot

log = logging.getLogger(__name__)

ACTIVE = (RunState.SUBMITTED, RunState.RUNNING)
_MAY_FOLLOW: Mapping[RunState, tuple[RunState, ...]] = {
    RunState.SUBMITTED: (RunState.QUEUED,),
    RunState.RUNNING: (RunState.QUEUED, RunState.SUBMITTED),
    RunState.SUCCEEDED: (RunState.QUEUED, *ACTIVE),
    RunState.FAILED: (RunState.QUEUED, *ACTIVE),
    RunState.ERROR: ACTIVE,
    RunState.TIMED_OUT: ACTIVE,
}
FULL_EVERY = 10  # one resync in this many compares every unfinished run (with the default
# 30 s poll, every 5 minutes: how late a deadline may be noticed)
_ARCHIVED = " (read from Argo's workflow archive: the workflow itself has been deleted)"


def _message(progress: Progress, name: str) -> str:
    if progress.state in (RunState.ERROR, RunState.TIMED_OUT):
        return progress.summary
    if progress.state is RunState.FAILED:
        return f"Workflow `{name}` failed: {progress.summary}"
    words = {RunState.RUNNING: "is running", RunState.SUCCEEDED: "succeeded"}
    return f"Workflow `{name}` {words.get(progress.state, 'was created')}."


async def apply(
    pipeline: Pipeline, run_id: uuid.UUID, name: str, progress: Progress, note: str = ""
) -> bool:
    """Record what the engine says of a run's workflow; False when it changed nothing."""
    return (await apply_all(pipeline, [WorkflowChange(run_id, name, progress)], note))[0]


async def apply_all(
    pipeline: Pipeline, changes: Sequence[WorkflowChange], note: str = ""
) -> list[bool]:
    """Record several changes in one transaction (a burst of endings costs one commit, not
    one each), in order; for each, whether it changed the run."""
    outcomes, ran = [], []
    async with pipeline.database.engine.begin() as connection:
        for change in changes:
            progress, run_id = change.progress, change.run_id
            allowed = _MAY_FOLLOW.get(progress.state)
            if allowed is None:
                outcomes.append(False)
                continue
            message = _message(progress, change.name)
            if note:
                message = message.removesuffix(".") + note + "."
            changed = await store.change_state(
                connection,
                run_id,
                progress.state,
                message,
                only_from=allowed,
                workflow_name=change.name,
            )
            if progress.steps is not None:
                await store.record_progress(connection, run_id, progress.steps)
            if changed and progress.state.finished:
                ran.append(
                    (progress.state, await store.seconds_since_submitted(connection, run_id))
                )
            outcomes.append(changed)
    for state, seconds in ran:
        if seconds is not None:
            pipeline.metrics.run_seconds.labels(state.value).observe(seconds)
    return outcomes


async def vanished(pipeline: Pipeline, run_id: uuid.UUID, name: str) -> None:
    """The live workflow is gone: end the run with its archived phase, else as an error."""
    assert pipeline.workflows is not None
    unreadable = ""
    try:
        archived = await pipeline.workflows.archived_progress(run_id.hex)
    except PermanentError as err:  # e.g. not allowed to read the archive: waiting cannot help
        archived, unreadable = None, f" (the archive could not be read: {err})"
    if archived is not None and archived.state.finished:
        if await apply(pipeline, run_id, name, archived, note=_ARCHIVED):
            pipeline.metrics.follow_endings.labels("archived").inc()
        return
    gone = Progress(
        RunState.ERROR,
        f"Workflow `{name}` no longer exists in Argo and Argo's workflow archive has no "
        f"record of it{unreadable}, so its result is unknown. Push again, or re-run the "
        "check, to run the recipe again.",
    )
    if await apply(pipeline, run_id, name, gone):
        pipeline.metrics.follow_endings.labels("vanished").inc()


@dataclass
class Following:
    """What the list and the watch last said of each workflow of ours, by name, and which
    workflows' runs the next resync must look at. A heard change is recorded as it comes,
    so only one that could not be (or was not yet) recorded is `unsettled`."""

    seen: dict[str, Progress] = field(default_factory=dict)
    heard: int = 0  # changes and snapshots taken, ever
    waiting: collections.Counter[str] = field(default_factory=collections.Counter)  # queued
    snapshot: asyncio.Event = field(default_factory=asyncio.Event)  # set: resync now, fully
    unsettled: set[str] = field(default_factory=set)  # names the next resync compares

    def hear(self, change: WorkflowChange) -> None:
        if change.deleted:
            self.seen.pop(change.name, None)
        else:
            self.seen[change.name] = change.progress

    def replace(self, snapshot: WorkflowSnapshot) -> None:
        self.seen = {change.name: change.progress for change in snapshot.changes}
        self.snapshot.set()


async def on_changes(pipeline: Pipeline, changes: Sequence[WorkflowChange]) -> None:
    """Record what was heard: a workflow deleted before it ended has vanished; the rest
    are recorded together."""
    recorded = []
    for change in changes:
        if change.deleted and not change.progress.state.finished:
            await vanished(pipeline, change.run_id, change.name)
        else:
            recorded.append(change)
    if recorded:
        await apply_all(pipeline, recorded)


def deadline_s(own: object, default_hours: float) -> float:
    """How long a run may stay unfinished: its workflow's `activeDeadlineSeconds` (`own`),
    else the setting."""
    if isinstance(own, int) and not isinstance(own, bool) and own > 0:
        return float(own)
    return default_hours * 3600


def _duration(seconds: float) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size:
            value = round(seconds / size, 1)
            return f"{value:g} {unit}{'' if value == 1 else 's'}"
    return f"{round(seconds, 1):g} seconds"


async def time_out(pipeline: Pipeline, run_id: uuid.UUID, name: str, limit_s: float) -> None:
    """Stop a run's workflow that outlived its deadline, and end the run as timed out."""
    assert pipeline.workflows is not None
    late = f"Workflow `{name}` did not finish within {_duration(limit_s)} of its submission"
    message = f"{late}, so ogdc-hooks stopped it."
    try:
        await pipeline.workflows.stop(name, f"ogdc-hooks: unfinished after {_duration(limit_s)}")
    except PermanentError as err:
        message = f"{late}, and Argo refused to stop it ({err}): stop it in the Argo UI."
    if await apply(pipeline, run_id, name, Progress(RunState.TIMED_OUT, message)):
        pipeline.metrics.follow_endings.labels("timed_out").inc()


async def follow_run(pipeline: Pipeline, run: store.Unfinished, following: Following) -> None:
    """Bring one unfinished run up to what was heard of its workflow; read the workflow
    from Argo only when nothing was heard of it. One whose heard state is its stored state
    costs a comparison: no query, no request."""
    assert pipeline.workflows is not None
    if run.workflow_name is None:
        return  # nothing to follow yet
    if run.workflow_name in following.waiting:  # what was heard of it is being recorded
        following.unsettled.add(run.workflow_name)  # (perhaps older than a snapshot)
        return
    limit_s = deadline_s(run.own_deadline, pipeline.settings.run_deadline_hours)
    late = run.age_s > limit_s
    progress = following.seen.get(run.workflow_name)
    if progress is None:
        try:
            progress = await pipeline.workflows.progress(run.workflow_name)
        except PermanentError:
            if not late:
                raise
            progress = Progress(RunState.SUBMITTED)  # unreadable for good, late: it ends
    if progress is None:
        await vanished(pipeline, run.id, run.workflow_name)
        return
    if late and not progress.state.finished:
        await time_out(pipeline, run.id, run.workflow_name, limit_s)
    elif (progress.state, progress.steps or run.progress) != (run.state, run.progress):
        await apply(pipeline, run.id, run.workflow_name, progress)


async def _follow(
    pipeline: Pipeline, following: Following, runs: Sequence[store.Unfinished]
) -> None:
    """Follow each run; one that fails is logged, and looked at again next time."""
    for run in runs:
        try:
            await follow_run(pipeline, run, following)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.warning("following run %s failed (%s); will try again", run.id, err)
            if run.workflow_name is not None:
                following.unsettled.add(run.workflow_name)
    await asyncio.sleep(0)  # a page compared: let what waits run


async def _pages(
    pipeline: Pipeline, following: Following, page: int, skip: set[str], **only: Any
) -> None:
    """Follow the unfinished runs `only` selects (`store.unfinished_runs`), `page` at a time
    by id, but those of the workflows in `skip`."""
    after = None
    engine = pipeline.database.engine
    while runs := await store.unfinished_runs(engine, ACTIVE, after, page, **only):
        await _follow(pipeline, following, [r for r in runs if r.workflow_name not in skip])
        after = runs[-1].id


async def resync(
    pipeline: Pipeline, following: Following, page: int = 500, *, since: int | None = None
) -> None:
    """Compare unfinished runs with what was heard, `page` runs a query (only the compared
    columns), yielding to the loop between pages so endings heard meanwhile are not held
    up. Without `since`, every unfinished run (a full pass); with it (a `store.last_event`),
    only those of the `unsettled` workflows and those submitted after that event.
    `unsettled` is taken whole at the start (names added meanwhile are the next pass's)
    and put back if the pass fails."""
    names, following.unsettled = following.unsettled, set()
    try:
        if since is None:
            await _pages(pipeline, following, page, set())
            return
        ordered = sorted(names)
        for start in range(0, len(ordered), page):
            chunk = ordered[start : start + page]  # one query: workflow names are unique
            runs = await store.unfinished_runs(
                pipeline.database.engine, ACTIVE, None, page, names=chunk
            )
            await _follow(pipeline, following, runs)
        await _pages(pipeline, following, page, names, submitted_after=since)
    except BaseException:
        following.unsettled |= names
        raise


_APPLIERS = 8  # changes recorded at once; one workflow's always by the same one, in order
_BATCH = 64  # changes one applier records in one transaction, when that many wait


async def _watch(pipeline: Pipeline, following: Following) -> None:
    failures = 0
    while True:
        heard = following.heard
        try:
            await _hear(pipeline, following)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            failures = 1 if following.heard != heard else failures + 1
            log.warning("workflow watch interrupted (%s); reconnecting", err)
        else:
            failures = 0
        await asyncio.sleep(retry_delay(failures + 1, base=1.0, cap=60.0))


async def _hear(pipeline: Pipeline, following: Following) -> None:
    """Take the engine's changes until the stream ends and record them, `_APPLIERS` at once
    and what waits in one transaction each (a burst of endings waits for the database in
    parallel and in batches, not in line); a change that cannot be recorded is logged,
    and the resync records it later."""
    assert pipeline.workflows is not None
    queues = [asyncio.Queue[WorkflowChange](maxsize=256) for _ in range(_APPLIERS)]
    appliers = [asyncio.create_task(_record(pipeline, following, q)) for q in queues]
    try:
        async for change in pipeline.workflows.changes():
            following.heard += 1
            if isinstance(change, WorkflowSnapshot):
                following.replace(change)
            else:
                following.hear(change)
                following.waiting[change.name] += 1
                await queues[zlib.crc32(change.name.encode()) % _APPLIERS].put(change)
        for queue in queues:
            await queue.join()
    finally:
        for applier in appliers:
            applier.cancel()
        await asyncio.gather(*appliers, return_exceptions=True)
        following.unsettled.update(following.waiting)  # heard, never recorded: the resync's
        following.waiting.clear()


async def _record(
    pipeline: Pipeline, following: Following, queue: asyncio.Queue[WorkflowChange]
) -> None:
    """Record what waits in `queue`, up to `_BATCH` changes a transaction."""
    while True:
        batch = [await queue.get()]
        while len(batch) < _BATCH and not queue.empty():
            batch.append(queue.get_nowait())
        recorded = False
        try:
            await on_changes(pipeline, batch)
            recorded = True
        except Exception as err:
            names = ", ".join(change.name for change in batch[:3])
            log.warning("recording workflows %s failed (%s); the resync will", names, err)
        finally:
            if not recorded:  # failed, or the watch broke off meanwhile
                following.unsettled.update(change.name for change in batch)
            for change in batch:
                following.waiting[change.name] -= 1
                if following.waiting[change.name] <= 0:
                    del following.waiting[change.name]
                queue.task_done()


async def _poll(pipeline: Pipeline, following: Following, interval: float) -> None:
    """Resync every `interval`, and as soon as a snapshot came (the first one too: before
    it, nothing was heard and every run would be read on its own). A full pass after a
    snapshot and every `FULL_EVERY` passes, else one of what changed since the pass before
    the last began (two passes back, so a submission committed just after a pass read the
    events is not missed); a failed pass is done again, of the same kind."""
    starts: collections.deque[int] = collections.deque(maxlen=2)  # the last passes' events
    left = 0  # passes before the next full one
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(following.snapshot.wait(), interval)
        if following.snapshot.is_set():
            following.snapshot.clear()
            left = 0
        try:
            start = await store.last_event(pipeline.database.engine)
            await resync(pipeline, following, since=starts[0] if left else None)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.warning("workflow resync failed (%s); will try again", err)
            continue
        pipeline.metrics.follow_resyncs.labels("incremental" if left else "full").inc()
        starts.append(start)
        left = left - 1 if left else FULL_EVERY - 1


def follower_tasks(pipeline: Pipeline, poll_interval: float = 30.0) -> dict[str, Work]:
    """The watch and the poll, by name, for a `Supervisor`; none without a workflow engine."""
    if pipeline.workflows is None:
        return {}
    following = Following()
    return {
        "workflow watch": lambda: _watch(pipeline, following),
        "workflow resync": lambda: _poll(pipeline, following, poll_interval),
    }
