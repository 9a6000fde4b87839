"""Cancelling and retrying a run: asked for from its report (a check run's buttons), through
the API (`POST /runs/{id}/cancel|retry`) or the dashboard's run page, or, for a cancel, by a
newer push (`supersede.py`).

A cancel ends the run at once (`cancelled`) and queues a `stop` job that stops its
workflow in the engine (Argo's stop: no new steps, exit handlers still run), retried
until the engine takes it; the follower then leaves the run as it is. A retry asks
the engine to run the failed steps of the failed workflow again (succeeded ones are
kept) and moves the same run back to `submitted` (its deadline counts from then); the
follower carries it to its end, reported on a check run of the same name. Only the
run's requester or an admin may do either.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ogdc_hooks.auth.unknown_pusher import add_login_command
from ogdc_hooks.auth.users import Account
from ogdc_hooks.forges.base import ActionRequested, ReportAction, RerunRequested
from ogdc_hooks.jobs.errors import PermanentError
from ogdc_hooks.jobs.kinds import enqueue_stop, run_id_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.deliveries import delivered
from ogdc_hooks.pipeline.requesters import known_user
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.runstate import RunState

log = logging.getLogger(__name__)

CANCELLABLE = (RunState.QUEUED, RunState.SUBMITTED, RunState.RUNNING)
NOT_DONE = "Not done: "  # starts the note a refused request leaves on the run's report


class ActionRefused(Exception):
    """The run cannot be cancelled or retried now; the message says why and what to do.
    `forbidden`: the person may not act on the run (else its state is wrong)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


def names_the_run(request: RerunRequested | ActionRequested, run: RunRecord) -> bool:
    """Whether the request comes from the run's own forge and repository and names its commit."""
    return (
        request.repo.forge == run.forge
        and request.repo.name.lower() == run.repository.lower()
        and request.commit_sha == run.commit_sha
    )


# request_cancel, request_retry, rerun.request_rerun: the run to show afterwards (None: the
# same run, as it is then).
Act = Callable[[Pipeline, RunRecord, str], Awaitable[RunRecord | None]]


def cancellable(run: RunRecord) -> bool:
    """Whether a cancel could be taken now (the dashboard shows the button only then)."""
    return run.state in CANCELLABLE


def retryable(run: RunRecord) -> bool:
    """Whether the run failed in Argo, so that its failed steps can be run again."""
    return run.state is RunState.FAILED and run.workflow_name is not None


def may_act(user: Account, run: RunRecord) -> bool:
    """`check_allowed` as a question."""
    try:
        check_allowed(user, run)
    except ActionRefused:
        return False
    return True


async def act_as(pipeline: Pipeline, user: Account, run: RunRecord, act: Act) -> RunRecord:
    """Cancel, retry or re-run (`act`) the run for `user`, if they may: the run as it is
    afterwards (a re-run's new attempt). Raises ActionRefused (and TransientError when the
    engine cannot be reached)."""
    check_allowed(user, run)
    if shown := await act(pipeline, run, user.name):
        return shown
    changed = await store.get_run(pipeline.database.engine, run.id)
    return changed or run


def check_allowed(user: Account, run: RunRecord) -> None:
    """The run's requester or an admin may cancel, retry or re-run it."""
    if not user.is_active:
        raise ActionRefused(f"{user.name} is not an active user", forbidden=True)
    if not (user.is_admin or user.name == run.requested_by):
        who = f" ({run.requested_by})" if run.requested_by else ""
        raise ActionRefused(
            f"only the run's requester{who} or an admin may act on run {run.id}; "
            f"{user.name} is neither",
            forbidden=True,
        )


async def cancel(pipeline: Pipeline, run: RunRecord, message: str) -> bool:
    """End the run as cancelled and queue the stop of its workflow; False when it had
    ended already."""
    async with pipeline.database.engine.begin() as connection:
        changed = await store.change_state(
            connection, run.id, RunState.CANCELLED, message, only_from=CANCELLABLE
        )
        if changed:
            await enqueue_stop(connection, run.id)
    if changed:
        log.info("run %s cancelled: %s", run.id, message)
    return changed


async def request_cancel(pipeline: Pipeline, run: RunRecord, by: str) -> None:
    """Cancel on someone's request (`by`: who, as the report should name them)."""
    if not cancellable(run) or not await cancel(pipeline, run, f"Cancelled by {by}."):
        current = await store.get_run(pipeline.database.engine, run.id)
        state = current.state if current else run.state
        raise ActionRefused(
            f"run {run.id} is {state.value}, not queued or running, so there is nothing to "
            "cancel" + ("; retry it instead" if state is RunState.FAILED else "")
        )


async def request_retry(pipeline: Pipeline, run: RunRecord, by: str) -> None:
    """Run the failed steps of the run's failed workflow again, as the same run."""
    name = run.workflow_name
    if not retryable(run) or name is None:
        hint = (
            "cancel it first, or wait for it to end"
            if run.state in CANCELLABLE
            else "push again or re-run its check to run it anew"
        )
        raise ActionRefused(
            f"run {run.id} is {run.state.value}; only a run that failed in Argo can have its "
            f"failed steps retried ({hint})"
        )
    if pipeline.workflows is None:
        raise ActionRefused("no Argo Server is configured (ARGO_WORKFLOWS_SERVICE_URL)")
    try:
        await pipeline.workflows.retry(name)
    except PermanentError as err:
        raise ActionRefused(
            f"Argo refused to retry workflow `{name}` ({err}); push again or re-run the check "
            "to run the recipe anew"
        ) from None
    message = (
        f"Retrying the failed steps of workflow `{name}` at {by}'s request; the steps that "
        "succeeded are not run again."
    )
    async with pipeline.database.engine.begin() as connection:
        # Submitted again: its deadline counts from now, and the follower takes it on. A
        # completed check run cannot be reopened: the retry is reported on a new check
        # run of the same name (see `forges/github/reporter.py`).
        await store.change_state(
            connection,
            run.id,
            RunState.SUBMITTED,
            message,
            only_from=[RunState.FAILED],
            check_run_id=None,
            failure=None,  # the last attempt's details; this attempt's are read if it fails
            output_url=None,
        )
    log.info("run %s: workflow %s retried at %s's request", run.id, name, by)


async def handle_stop(pipeline: Pipeline, job: Job) -> None:
    """The `stop` job: stop a cancelled run's workflow (one created after the cancel, by a
    submission already under way, is found by the run's label)."""
    run = await store.get_run(pipeline.database.engine, run_id_of(job))
    if run is None or run.state is not RunState.CANCELLED or pipeline.workflows is None:
        return
    name = run.workflow_name or await pipeline.workflows.find_by_run(run.id.hex)
    if name is not None:
        await pipeline.workflows.stop(name, f"ogdc-hooks: {run.message or 'cancelled'}")
        log.info("workflow %s of cancelled run %s stopped", name, run.id)


async def stop_refused(pipeline: Pipeline, job: Job, error: str) -> None:
    """The engine refused the stop for good: the run stays cancelled, and its report says
    the workflow may still be running."""
    run = await store.get_run(pipeline.database.engine, run_id_of(job))
    if run is None or run.state is not RunState.CANCELLED:
        return
    message = (
        f"{run.message or 'Cancelled.'} Argo refused to stop its workflow ({error[:500]}), "
        "so it may still be running: stop it in the Argo UI."
    )
    async with pipeline.database.engine.begin() as connection:
        await store.change_state(
            connection, run.id, RunState.CANCELLED, message, only_from=[RunState.CANCELLED]
        )


def _without_note(message: str | None) -> str:
    if message and message.startswith(NOT_DONE):
        return message.partition("\n\n")[2]
    return message or ""


async def leave_note(pipeline: Pipeline, run: RunRecord, why: str) -> None:
    """Say on the run's report why a request was not carried out (the run's state stays)."""
    rest = _without_note(run.message)
    message = f"{NOT_DONE}{why}" + (f"\n\n{rest}" if rest else "")
    async with pipeline.database.engine.begin() as connection:
        await store.change_state(connection, run.id, run.state, message, only_from=[run.state])


_PRESSED = {ReportAction.CANCEL: "Cancel", ReportAction.RETRY: "Retry failed steps"}


async def handle_requested_action(pipeline: Pipeline, job: Job) -> None:
    """A button of a run's report was pressed: do it when a known user allowed to asked."""
    forge, request = await delivered(pipeline, job)
    if not isinstance(request, ActionRequested):
        log.info("delivery %s asks for no action; ignored", job.payload["delivery"])
        return
    run = await store.get_run(pipeline.database.engine, request.run_id) if request.run_id else None
    if run is None:
        log.info("an action was requested on a check that is not ours; ignored")
        return
    if not names_the_run(request, run):
        log.warning("action on run %s requested from another repository or commit", run.id)
        return
    login = request.requester
    if request.action is None:
        log.warning("run %s: @%s pressed a button that is not ours; ignored", run.id, login)
        return
    button = _PRESSED[request.action]
    user = await known_user(pipeline, run.forge, login)
    try:
        if user is None:
            label = forge.label if forge else run.forge
            raise ActionRefused(
                f"@{login} is not a known, active ogdc-hooks user of {label}, so nothing was "
                f"done (an admin gives a user this login: `{add_login_command(run.forge, login)}`)"
            )
        check_allowed(user, run)
        if request.action is ReportAction.CANCEL:
            await request_cancel(pipeline, run, f"@{login}")
        else:
            await request_retry(pipeline, run, f"@{login}")
    except ActionRefused as err:
        log.warning("run %s: %s by @%s not done: %s", run.id, button, login, err)
        current = await store.get_run(pipeline.database.engine, run.id)
        await leave_note(pipeline, current or run, f"{button} by @{login}: {err}")
