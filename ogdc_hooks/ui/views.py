"""The dashboard's pages: runs (live), one run, recipes, admin, sign-in and sign-out.

Every handler wears `session.page`; templates autoescape everything they print.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NoReturn

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session
from pydantic import ValidationError

from ogdc_hooks.api.accounts import (
    NewUser,
    TokenForm,
    UserChanges,
    change_account,
    create_account,
    sign_in,
)
from ogdc_hooks.api.bodies import validated
from ogdc_hooks.api.context import SETTINGS, SUPERVISOR, USERS
from ogdc_hooks.api.runs import (
    LOCATION_MAX,
    NO_CONTROL,
    OFFSET_MAX,
    refusal,
    run_detail,
    unreachable,
)
from ogdc_hooks.jobs.errors import TransientError
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.actions import (
    Act,
    ActionRefused,
    act_as,
    cancellable,
    may_act,
    request_cancel,
    request_retry,
    retryable,
)
from ogdc_hooks.pipeline.commit_report import workflow_url
from ogdc_hooks.pipeline.context import PIPELINE
from ogdc_hooks.pipeline.rerun import request_rerun, rerunnable
from ogdc_hooks.pipeline.store import RunFilter, RunRecord
from ogdc_hooks.runstate import Partitions, RunState
from ogdc_hooks.ui import present, queries
from ogdc_hooks.ui.session import (
    FORM,
    TOKEN,
    VIEWER,
    csrf_token,
    error_page,
    page,
    ui_url,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 25
ARGO_WAIT = 5.0  # seconds the run page waits for Argo's live view of the workflow
FILTERS = ("repository", "recipe", "state", "branch", "pusher", "from", "to")
_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
_STATIC = importlib.resources.files("ogdc_hooks.ui") / "static"
_CONTROL = re.compile(NO_CONTROL)

routes = web.RouteTableDef()


@dataclass(frozen=True)
class RunAction:
    """A button on the run page: a POST form to /ui/runs/{id}/`path`, shown when the run
    `applies` and the viewer may act on it (the API's rule: its requester or an admin)."""

    label: str
    path: str
    applies: Callable[[RunRecord], bool]


RUN_ACTIONS = (
    RunAction("Cancel", "cancel", cancellable),
    RunAction("Retry failed steps", "retry", retryable),
    RunAction("Re-run", "rerun", rerunnable),
)


class BadFilter(ValueError):
    """A filter the runs page cannot use; the message says which and why."""


def _text_filter(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name, "").strip()
    if not value:
        return None
    if len(value) > LOCATION_MAX or not _CONTROL.match(value):
        raise BadFilter(f"{name}: at most {LOCATION_MAX} characters, no control characters")
    return value


def _day(query: Mapping[str, str], name: str) -> date | None:
    value = query.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"{name}: a date as YYYY-MM-DD, got something else") from None


def run_filter(query: Mapping[str, str]) -> RunFilter:
    """The runs page's filters as the run store takes them; `BadFilter` says what is wrong.
    Dates are whole days in UTC, both ends included."""
    state_text = _text_filter(query, "state")
    try:
        state = RunState(state_text) if state_text else None
    except ValueError:
        raise BadFilter(f"state: one of {', '.join(s.value for s in RunState)}") from None
    branch = _text_filter(query, "branch")
    first, last = _day(query, "from"), _day(query, "to")
    return RunFilter(
        repository=_text_filter(query, "repository"),
        recipe=_text_filter(query, "recipe"),
        state=state,
        ref=f"refs/heads/{branch}" if branch and not branch.startswith("refs/") else branch,
        requested_by=_text_filter(query, "pusher"),
        created_from=datetime.combine(first, time(), UTC) if first else None,
        created_before=datetime.combine(last + timedelta(days=1), time(), UTC) if last else None,
    )


def _page_number(query: Mapping[str, str]) -> int:
    try:
        number = int(query.get("page", "1"))
    except ValueError:
        raise BadFilter("page: a whole number from 1") from None
    if not 1 <= number <= OFFSET_MAX // PAGE_SIZE:
        raise BadFilter("page: a whole number from 1")
    return number


def _row(
    request: web.Request, run: RunRecord, last_change: datetime | None, now: datetime
) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    forge = request.app[PIPELINE].forges.get(run.forge)
    colour, words = present.badge(run.state)
    return {
        "run": run,
        "branch": present.branch(run.ref),
        "badge": colour,
        "state": words,
        "duration": present.duration(present.run_seconds(run, last_change, now)),
        "commit_url": present.commit_url(forge, run),
        "argo_url": workflow_url(settings.argo_ui_base, settings.argo_namespace, run.workflow_name),
        "url": ui_url(request, f"/runs/{run.id}"),
    }


async def _runs_context(request: web.Request) -> dict[str, Any]:
    query = request.query
    where, number = run_filter(query), _page_number(query)
    engine = request.app[PIPELINE].database.engine
    runs, total = await store.list_runs(
        engine, where, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    changes = await queries.last_changes(engine, [run.id for run in runs])
    now = datetime.now(UTC)
    kept = {name: query[name] for name in FILTERS if query.get(name)}
    pages = max(1, -(-total // PAGE_SIZE))
    return {
        "rows": [_row(request, run, changes.get(run.id), now) for run in runs],
        "total": total,
        "page": number,
        "pages": pages,
        "filters": kept,
        "previous": ui_url(request, "/", **kept, page=str(number - 1)) if number > 1 else None,
        "next": ui_url(request, "/", **kept, page=str(number + 1)) if number < pages else None,
        "live_url": ui_url(request, "/runs/rows", **kept, page=str(number)),
        "states": [s.value for s in RunState],
    }


async def _context(request: web.Request, **values: Any) -> dict[str, Any]:
    viewer = request[VIEWER]
    return {"viewer": viewer.user, "csrf": viewer.csrf, **values}


@routes.get("/")
@page()
async def runs_page(request: web.Request) -> web.StreamResponse:
    try:
        values = await _runs_context(request)
    except BadFilter as err:
        return error_page(request, 422, str(err))
    return aiohttp_jinja2.render_template("runs.html", request, await _context(request, **values))


@routes.get("/runs/rows")
@page()
async def runs_rows(request: web.Request) -> web.StreamResponse:
    """The runs table alone, which the page's script fetches to stay live."""
    try:
        values = await _runs_context(request)
    except BadFilter as err:
        return error_page(request, 422, str(err))
    return aiohttp_jinja2.render_template(
        "runs_table.html", request, await _context(request, **values)
    )


async def _partitions(request: web.Request, run: RunRecord) -> tuple[list[Partitions], str | None]:
    """How the partitions of the run's fan-out steps stand in Argo now, or why unknown."""
    workflows = request.app[PIPELINE].workflows
    if workflows is None or run.workflow_name is None:
        return [], None
    try:
        async with asyncio.timeout(ARGO_WAIT):
            found = await workflows.partitions(run.workflow_name)
    except Exception as err:  # Argo down, slow or refusing: the page shows the rest
        log.info("run page: Argo did not show %s: %r", run.workflow_name, err)
        return [], "Argo did not answer, so the partitions are not shown."
    if found is None:
        return [], "The workflow is no longer in Argo, so its partitions are not shown."
    return found, None


async def _run_of(request: web.Request) -> RunRecord | None:
    """The run the path names, if there is one."""
    try:
        run_id = uuid.UUID(request.match_info["run_id"])
    except ValueError:
        return None
    return await store.get_run(request.app[PIPELINE].database.engine, run_id)


@routes.get("/runs/{run_id}")
@page()
async def run_page(request: web.Request) -> web.StreamResponse:
    run = await _run_of(request)
    if run is None:
        return error_page(request, 404, "No such run.")
    engine = request.app[PIPELINE].database.engine
    detail = (await run_detail(engine, run)).model_dump()
    forge = request.app[PIPELINE].forges.get(run.forge)
    partitions, live_note = await _partitions(request, run)
    workflow_html = (
        await asyncio.to_thread(present.workflow_yaml, run.workflow) if run.workflow else None
    )
    last_change = max((event["at"] for event in detail["events"]), default=None)
    values = {
        **_row(request, run, last_change, datetime.now(UTC)),
        "detail": detail,
        "events": [
            {**event, **dict(zip(("colour", "words"), present.badge(event["state"]), strict=True))}
            for event in detail["events"]
        ],
        "problems": present.problems(forge, run),
        "workflow_html": workflow_html,
        "steps": present.steps(run.workflow or {}),
        "partitions": partitions,
        "live_note": live_note,
        "actions": _actions(request, run),
    }
    return aiohttp_jinja2.render_template("run.html", request, await _context(request, **values))


def _actions(request: web.Request, run: RunRecord) -> list[RunAction]:
    """The buttons the viewer may press on this run now."""
    if request.app[SETTINGS].access_mode == "read_only" or request.app[PIPELINE].workflows is None:
        return []
    user = request[VIEWER].user
    return [a for a in RUN_ACTIONS if a.applies(run) and may_act(user, run)]


async def _act(request: web.Request, act: Act) -> web.StreamResponse:
    """A button's form: act as the viewer, then back to the run page (or say why not)."""
    run = await _run_of(request)
    if run is None:
        return error_page(request, 404, "No such run.")
    try:
        shown = await act_as(request.app[PIPELINE], request[VIEWER].user, run, act)
    except TransientError as err:
        return error_page(request, 503, unreachable(err))
    except ActionRefused as err:
        return error_page(request, 403 if err.forbidden else 409, refusal(err))
    raise web.HTTPSeeOther(ui_url(request, f"/runs/{shown.id}"))


@routes.post("/runs/{run_id}/cancel")
@page(changes=True)
async def cancel_run(request: web.Request) -> web.StreamResponse:
    return await _act(request, request_cancel)


@routes.post("/runs/{run_id}/retry")
@page(changes=True)
async def retry_run(request: web.Request) -> web.StreamResponse:
    return await _act(request, request_retry)


@routes.post("/runs/{run_id}/rerun")
@page(changes=True)
async def rerun_run(request: web.Request) -> web.StreamResponse:
    return await _act(request, request_rerun)


@routes.get("/recipes")
@page()
async def recipes_page(request: web.Request) -> web.StreamResponse:
    histories = await queries.recipe_histories(request.app[PIPELINE].database.engine)
    recipes = []
    for history in histories:
        last = history.runs[0]
        recipes.append(
            {
                "history": history,
                "last": last,
                "last_badge": present.badge(last.state),
                "strip": [(r, present.badge(r.state)) for r in history.runs],
                "rate": present.success_rate([r.state for r in history.runs]),
                "median": present.duration(
                    present.median(r.seconds for r in history.runs if r.seconds is not None)
                ),
                "runs_url": ui_url(
                    request, "/", repository=history.repository, recipe=history.recipe
                ),
                "last_url": ui_url(request, f"/runs/{last.id}"),
            }
        )
    return aiohttp_jinja2.render_template(
        "recipes.html", request, await _context(request, recipes=recipes)
    )


@routes.get("/admin")
@page(admin=True)
async def admin_page(request: web.Request) -> web.StreamResponse:
    engine = request.app[PIPELINE].database.engine
    settings = request.app[SETTINGS]
    values = {
        "users": await request.app[USERS].list(),
        "hosts": [forge.host for forge in request.app[PIPELINE].forges],
        "deliveries": await queries.recent_deliveries(engine),
        "queue": await queries.queue_figures(engine),
        "reconciling": bool(settings.reconcile_seconds),
        "background": request.app[SUPERVISOR].health.problems(),
    }
    return aiohttp_jinja2.render_template("admin.html", request, await _context(request, **values))


def _text(name: str, request: web.Request) -> str:
    value = request[FORM].get(name, "")
    return value if isinstance(value, str) else ""


def _to_admin(request: web.Request) -> NoReturn:
    raise web.HTTPSeeOther(ui_url(request, "/admin"))


@routes.post("/admin/users")
@page(admin=True, changes=True)
async def create_user(request: web.Request) -> web.StreamResponse:
    """A new user, with a login on one forge, as `POST /create_user` makes it."""
    fields: dict[str, Any] = {"username": _text("username", request)}
    fields["password"] = _text("password", request)
    if login := _text("login", request).strip():
        fields["forge_logins"] = {_text("host", request): login}
    await create_account(request, validated(NewUser, fields), request[VIEWER].user)
    _to_admin(request)


@routes.post("/admin/users/{name}/active")
@page(admin=True, changes=True)
async def set_active(request: web.Request) -> web.StreamResponse:
    """Disable or enable a user (never oneself), as `PATCH /users/{name}` does."""
    changes = validated(UserChanges, {"active": _text("active", request) == "true"})
    await change_account(request, request.match_info["name"], changes, request[VIEWER].user)
    _to_admin(request)


@routes.post("/admin/users/{name}/logins")
@page(admin=True, changes=True)
async def set_login(request: web.Request) -> web.StreamResponse:
    """Set (or, left empty, remove) a user's login on one forge."""
    login = _text("login", request).strip() or None
    changes = validated(UserChanges, {"forge_logins": {_text("host", request): login}})
    await change_account(request, request.match_info["name"], changes, request[VIEWER].user)
    _to_admin(request)


def _sign_in_page(
    request: web.Request, csrf: str, *, error: str | None = None, status: int = 200
) -> web.Response:
    query = request.query
    values = {
        "csrf": csrf,
        "error": error,
        "expired": query.get("expired") == "1" and error is None,
        "next": _next(query.get("next")) or ui_url(request, "/"),
    }
    return aiohttp_jinja2.render_template("login.html", request, values, status=status)


def _next(target: object) -> str | None:
    """Only a path of ours: never another site (`//evil`, `https://...`)."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return None
    return target if "\\" not in target else None


@routes.get("/login")
@page(anonymous=True)
async def login_form(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    return _sign_in_page(request, csrf_token(session))


@routes.post("/login")
@page(anonymous=True)
async def login(request: web.Request) -> web.StreamResponse:
    """Sign in as `POST /token` does (same users, same throttle); the token goes into a
    new session, with a new CSRF token."""
    form = request[FORM]
    session = await get_session(request)
    try:
        fields = TokenForm.model_validate(
            {"username": form.get("username", ""), "password": form.get("password", "")}
        )
        issued = await sign_in(request, fields.username, fields.password)
    except ValidationError:
        return _sign_in_page(
            request, csrf_token(session), error="Incorrect username or password.", status=401
        )
    except web.HTTPException as err:
        answer = _sign_in_page(
            request, csrf_token(session), error=getattr(err, "detail", ""), status=err.status
        )
        if "Retry-After" in err.headers:
            answer.headers["Retry-After"] = err.headers["Retry-After"]
        return answer
    fresh = await new_session(request)
    fresh[TOKEN] = issued.token
    csrf_token(fresh)
    raise web.HTTPSeeOther(_next(form.get("next")) or ui_url(request, "/"))


@routes.post("/logout")
@page()
async def logout(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther(ui_url(request, "/login"))


def _static_files() -> dict[str, tuple[str, str]]:
    """The dashboard's own CSS and script, read once (never from disk while serving)."""
    files = {"highlight.css": (present.highlight_css(), "text/css")}
    for resource in _STATIC.iterdir():
        suffix = resource.name[resource.name.rfind(".") :]
        if suffix in _STATIC_TYPES:
            files[resource.name] = (resource.read_text(), _STATIC_TYPES[suffix])
    return files


_FILES = _static_files()


@routes.get("/static/{name}")
@page(anonymous=True)
async def static(request: web.Request) -> web.StreamResponse:
    """The dashboard's CSS and script (no CDN), and the highlighting's stylesheet."""
    found = _FILES.get(request.match_info["name"])
    if found is None:
        return error_page(request, 404, "No such file.")
    body, content_type = found
    return web.Response(
        text=body, content_type=content_type, headers={"Cache-Control": "max-age=300"}
    )
