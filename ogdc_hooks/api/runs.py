"""Runs through the token API: submit a recipe, follow it, fetch its output.

`/submit` queues the same kind of run a push makes (clone, validate, render,
submit, report) and waits a little for the workflow name, so a caller of
ogdc-runner's API gets `recipe_workflow_name` as before. `/runs/{id}/cancel` and
`/runs/{id}/retry` do what a check run's buttons do. Every route needs a token.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from ogdc_hooks.api.bodies import FORM, JSON, read_body
from ogdc_hooks.api.errors import api_error
from ogdc_hooks.api.openapi import operation
from ogdc_hooks.api.security import authenticated_user
from ogdc_hooks.failure import Failure
from ogdc_hooks.jobs.errors import TransientError
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.actions import (
    Act,
    ActionRefused,
    act_as,
    request_cancel,
    request_retry,
)
from ogdc_hooks.pipeline.api_runs import SubmissionRefused, submit_recipe, wait_for_workflow
from ogdc_hooks.pipeline.context import PIPELINE
from ogdc_hooks.pipeline.outputs import publishes_zip
from ogdc_hooks.pipeline.rerun import request_rerun
from ogdc_hooks.pipeline.sources import BadSource, parse_source
from ogdc_hooks.pipeline.store import RunFilter, RunRecord
from ogdc_hooks.recipes.render.publish import PUBLISHED_ZIP
from ogdc_hooks.runstate import RunState, describe

OFFSET_MAX = 2**31 - 1  # far past any page; PostgreSQL's OFFSET takes at most 2^63 - 1
SUBMIT_WAIT = 20.0  # seconds /submit waits for the workflow name before answering without it

# Argo's words for our states, as ogdc-runner's /status answered.
_PHASES = {
    RunState.QUEUED: "Pending",
    RunState.SUBMITTED: "Pending",
    RunState.RUNNING: "Running",
    RunState.SUCCEEDED: "Succeeded",
    RunState.FAILED: "Failed",
    RunState.ERROR: "Error",
    RunState.TIMED_OUT: "Failed",
    RunState.INVALID: "Error",
    RunState.REJECTED: "Error",
    RunState.DRY_RUN: "Skipped",
    RunState.CANCELLED: "Failed",
}


# No control characters (NUL, newlines, ESC, ...) in a location or a filter: git takes
# none, PostgreSQL no NUL, and a log line none raw.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
NO_CONTROL = f"^[^{_CONTROL}]*$"
_HAS_CONTROL = re.compile(f"[{_CONTROL}]")
# The runs table keeps a repository URL and a recipe path in 300 characters each.
LOCATION_MAX = 300


class SubmitRequest(BaseModel):
    recipe_path: str = Field(
        min_length=1,
        max_length=LOCATION_MAX,
        # any forge kind's short form (github://, forgejo://); `parse_source` names the kinds
        pattern=f"^[a-z][a-z0-9+.-]*://[^{_CONTROL}]*$",
        description="KIND://ORG:REPO@REF/PATH of a configured forge (github://, forgejo://), "
        "or an http(s) git URL with `ref` and `path`, without control characters",
    )
    ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=250,
        pattern=NO_CONTROL,
        description="a branch, tag or commit, without control characters",
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=LOCATION_MAX,
        pattern=NO_CONTROL,
        description="the recipe's directory in the repository, without control characters",
    )
    overwrite: bool = False


class SubmitResponse(BaseModel):
    message: str
    recipe_workflow_name: str | None
    run_id: str
    state: RunState


class StatusResponse(BaseModel):
    recipe_workflow_name: str | None
    status: str
    state: RunState
    run_id: str
    timestamp: datetime


class OutputResponse(BaseModel):
    data_url: str


class RunEventView(BaseModel):
    state: RunState
    message: str | None
    at: datetime


class RunView(BaseModel):
    id: str
    repository: str
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
    problems: list[dict[str, Any]]
    report_error: str | None
    reports: bool  # whether the run is shown on its commit
    progress: str | None = Field(
        description="Argo's done/total steps while known (the partitions of a parallel run)"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, run: RunRecord) -> RunView:
        values = {name: getattr(run, name) for name in cls.model_fields if name != "id"}
        values["problems"] = run.problems or []
        return cls(id=str(run.id), **values)


class StepFailureView(BaseModel):
    step: str
    node: str
    message: str
    log_tail: list[str] = Field(description="the step's last log lines, secrets masked")
    pod_gone: bool = Field(description="no log came back: the pod is gone, or printed nothing")
    log_error: str | None = Field(description="why the log could not be read")


class FailureView(BaseModel):
    classification: str = Field(description='e.g. "out of memory (OOMKilled)", "exit code 2"')
    explanation: str
    advice: str
    steps: list[StepFailureView]


class RunDetail(RunView):
    events: list[RunEventView]
    failure: FailureView | None = Field(
        description="why a failed run failed, once read from Argo (its check shows the same)"
    )
    output_url: str | None = Field(
        description="where a succeeded run's temporary output zip is served (GET /output)"
    )


class WorkflowManifest(BaseModel):
    """An Argo Workflow manifest, as rendered (apiVersion, kind, metadata, spec)."""

    model_config = {"extra": "allow"}


class RunPage(BaseModel):
    runs: list[RunView]
    total: int
    limit: int
    offset: int


routes = web.RouteTableDef()


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


@routes.post("/submit")
async def submit(request: web.Request) -> web.Response:
    body = await read_body(request, SubmitRequest, (JSON, FORM))
    pipeline = request.app[PIPELINE]
    try:
        source = parse_source(body.recipe_path, body.ref, body.path, pipeline.forges)
        run = await submit_recipe(pipeline, source, authenticated_user(request), body.overwrite)
    except BadSource as err:
        raise api_error(422, str(err)) from None
    except SubmissionRefused as err:
        raise api_error(err.status, str(err)) from None
    run = await wait_for_workflow(pipeline, run.id, within=SUBMIT_WAIT)
    if run.workflow_name:
        message = f"Submitted recipe {run.recipe} as workflow {run.workflow_name}."
    else:
        message = describe(run.recipe, run.state, run.message)
    return _json(
        SubmitResponse(
            message=message,
            recipe_workflow_name=run.workflow_name,
            run_id=str(run.id),
            state=run.state,
        ),
        status=202,
    )


async def _run_of_workflow(request: web.Request) -> RunRecord:
    """The run a workflow name names, or a run id (what `/submit` answers even for dry runs)."""
    name = request.match_info["recipe_workflow_name"]
    engine = request.app[PIPELINE].database.engine
    run = None
    if not _HAS_CONTROL.search(name):  # else nothing has that name (and PostgreSQL takes no NUL)
        try:
            run = await store.get_run(engine, uuid.UUID(name))
        except ValueError:
            run = await store.get_run_by_workflow(engine, name)
    if run is None:
        raise api_error(404, "No run has that id or workflow name; GET /runs lists them.")
    return run


@routes.get("/status/{recipe_workflow_name}")
async def status(request: web.Request) -> web.Response:
    run = await _run_of_workflow(request)
    return _json(
        StatusResponse(
            recipe_workflow_name=run.workflow_name,
            status=_PHASES[run.state],
            state=run.state,
            run_id=str(run.id),
            timestamp=datetime.now(UTC),
        )
    )


@routes.get("/output/{recipe_workflow_name}")
async def output(request: web.Request) -> web.Response:
    run = await _run_of_workflow(request)
    pipeline = request.app[PIPELINE]
    if run.state is not RunState.SUCCEEDED:
        raise api_error(409, f"Workflow {run.workflow_name} has not succeeded (it is {run.state}).")
    if not publishes_zip(run.workflow or {}):
        raise api_error(404, f"Workflow {run.workflow_name} has no temporary output to download.")
    if pipeline.workflows is None:
        raise api_error(503, "No Argo Server is configured to serve outputs.")
    assert run.workflow_name is not None
    url = await pipeline.workflows.output_url(run.workflow_name, PUBLISHED_ZIP)
    if url is None:
        raise api_error(404, f"Argo has no {PUBLISHED_ZIP} output for {run.workflow_name}.")
    return _json(OutputResponse(data_url=url))


async def _run_or_404(request: web.Request) -> RunRecord:
    """The run the path names; 404 for a malformed or unknown id alike."""
    try:
        run_id = uuid.UUID(request.match_info["run_id"])
    except ValueError:
        raise api_error(404, "No such run.") from None
    run = await store.get_run(request.app[PIPELINE].database.engine, run_id)
    if run is None:
        raise api_error(404, "No such run.")
    return run


@routes.get("/runs")
async def list_runs(request: web.Request) -> web.Response:
    query = request.query
    try:
        limit = int(query.get("limit", "20"))
        offset = int(query.get("offset", "0"))
        state = RunState(query["state"]) if "state" in query else None
    except ValueError as err:
        raise api_error(422, f"bad query parameter: {err}") from None
    if not 1 <= limit <= 100 or not 0 <= offset <= OFFSET_MAX:
        raise api_error(422, f"limit must be 1-100 and offset 0-{OFFSET_MAX}")
    repository, commit, recipe = (query.get(name) for name in ("repository", "commit", "recipe"))
    if any(_HAS_CONTROL.search(value) for value in (repository, commit, recipe) if value):
        raise api_error(422, "repository, commit and recipe must not contain control characters")
    where = RunFilter(repository, commit, recipe, state)
    page, total = await store.list_runs(
        request.app[PIPELINE].database.engine, where, limit=limit, offset=offset
    )
    return _json(
        RunPage(runs=[RunView.of(r) for r in page], total=total, limit=limit, offset=offset)
    )


async def run_detail(engine: AsyncEngine, run: RunRecord) -> RunDetail:
    """A run as `GET /runs/{id}` shows it (the dashboard's run page shows the same)."""
    events = [RunEventView(**event) for event in await store.run_events(engine, run.id)]
    failure = Failure.from_json(run.failure)
    return RunDetail(
        **RunView.of(run).model_dump(),
        events=events,
        failure=FailureView.model_validate(failure.to_json()) if failure else None,
        output_url=run.output_url,
    )


@routes.get("/runs/{run_id}")
async def get_run(request: web.Request) -> web.Response:
    run = await _run_or_404(request)
    return _json(await run_detail(request.app[PIPELINE].database.engine, run))


async def _act(request: web.Request, act: Act) -> web.Response:
    """Cancel, retry or re-run the run the path names, as its requester or an admin."""
    run = await _run_or_404(request)
    try:
        changed = await act_as(request.app[PIPELINE], authenticated_user(request), run, act)
    except TransientError as err:
        raise api_error(503, unreachable(err)) from None
    except ActionRefused as err:
        raise api_error(403 if err.forbidden else 409, refusal(err)) from None
    return _json(RunView.of(changed))


def unreachable(err: TransientError) -> str:
    """What a user reads when Argo could not take a cancel or retry now."""
    return f"Argo could not be reached ({err}); try again shortly."


def refusal(err: ActionRefused) -> str:
    """A refused cancel or retry, as a sentence."""
    reason = str(err)
    return f"{reason[:1].upper()}{reason[1:]}."


@routes.post("/runs/{run_id}/cancel")
async def cancel_run(request: web.Request) -> web.Response:
    return await _act(request, request_cancel)


@routes.post("/runs/{run_id}/retry")
async def retry_run(request: web.Request) -> web.Response:
    return await _act(request, request_retry)


@routes.post("/runs/{run_id}/rerun")
async def rerun_run(request: web.Request) -> web.Response:
    return await _act(request, request_rerun)


@routes.get("/runs/{run_id}/workflow")
async def get_run_workflow(request: web.Request) -> web.Response:
    run = await _run_or_404(request)
    if run.workflow is None:
        raise api_error(404, "This run has no rendered workflow.")
    return web.json_response(run.workflow)


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_WORKFLOW = _path("recipe_workflow_name", "The Argo workflow's name, or the run id")
_RUN = _path("run_id", "The run's id (a UUID)")

openapi_paths: dict[str, dict[str, Any]] = {
    "/submit": {
        "post": operation(
            "Submit a recipe from a git repository (the same run as a push)",
            body={JSON: SubmitRequest, FORM: SubmitRequest},
            responses={202: ("Queued; the workflow name once known", SubmitResponse)},
            errors={
                422: "The recipe location cannot be used, or its host is not allowed",
                503: "GitHub did not answer whether the user may act on the repository",
            },
        )
    },
    "/status/{recipe_workflow_name}": {
        "get": operation(
            "A submitted workflow's (or a run's) status",
            parameters=[_WORKFLOW],
            responses={200: ("Its status", StatusResponse)},
            errors={404: "No such workflow or run of ours"},
        )
    },
    "/output/{recipe_workflow_name}": {
        "get": operation(
            "Where to download a finished workflow's temporary output",
            parameters=[_WORKFLOW],
            responses={200: ("The download URL", OutputResponse)},
            errors={
                404: "No such workflow, or it has no temporary output",
                409: "The workflow has not succeeded",
                503: "No Argo Server is configured",
            },
        )
    },
    "/runs": {
        "get": operation(
            "Runs, newest first, filtered and paged",
            parameters=[
                _query("repository", {"type": "string", "pattern": NO_CONTROL}),
                _query("commit", {"type": "string", "pattern": NO_CONTROL}),
                _query("recipe", {"type": "string", "pattern": NO_CONTROL}),
                _query("state", {"type": "string", "enum": [s.value for s in RunState]}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                _query("offset", {"type": "integer", "minimum": 0, "maximum": OFFSET_MAX}),
            ],
            responses={200: ("A page of runs", RunPage)},
            errors={422: "A bad filter or page"},
        )
    },
    "/runs/{run_id}": {
        "get": operation(
            "One run with every state change and its time",
            parameters=[_RUN],
            responses={200: ("The run", RunDetail)},
            errors={404: "No such run"},
        )
    },
    "/runs/{run_id}/cancel": {
        "post": operation(
            "Cancel a queued or running run: it ends as cancelled and its workflow is stopped "
            "(exit handlers still run)",
            parameters=[_RUN],
            responses={200: ("The run, cancelled", RunView)},
            errors={
                403: "Only the run's requester or an admin may cancel it",
                404: "No such run",
                409: "The run has ended: nothing to cancel (a failed one can be retried)",
            },
        )
    },
    "/runs/{run_id}/retry": {
        "post": operation(
            "Run the failed steps of a run that failed in Argo again (succeeded steps are "
            "not run again); the same run goes back to running",
            parameters=[_RUN],
            responses={200: ("The run, running again", RunView)},
            errors={
                403: "Only the run's requester or an admin may retry it",
                404: "No such run",
                409: "The run did not fail in Argo (or Argo refused): push again or re-run it",
                503: "Argo could not be reached",
            },
        )
    },
    "/runs/{run_id}/rerun": {
        "post": operation(
            "Run a finished run's recipe anew at the same commit: a new attempt, queued "
            "(validated, rendered and submitted again, and reported on the commit)",
            parameters=[_RUN],
            responses={200: ("The new attempt, queued", RunView)},
            errors={
                403: "Only the run's requester or an admin may re-run it",
                404: "No such run",
                409: "The run has not ended, is not a recipe's, or a newer attempt exists",
            },
        )
    },
    "/runs/{run_id}/workflow": {
        "get": operation(
            "The Argo workflow rendered for a run",
            parameters=[_RUN],
            responses={200: ("The workflow manifest", WorkflowManifest)},
            errors={404: "No such run, or nothing rendered"},
        )
    },
}
openapi_models: tuple[type[BaseModel], ...] = (
    SubmitRequest,
    SubmitResponse,
    StatusResponse,
    OutputResponse,
    RunEventView,
    StepFailureView,
    FailureView,
    RunView,
    RunDetail,
    RunPage,
    WorkflowManifest,
)
