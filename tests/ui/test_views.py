"""The dashboard's views without a browser: its filters, what it shows of a run, and the
pages that need no database (sign-in, static files, refusals) served by the real app."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
import pytest
from aiohttp.test_utils import TestClient

from ogdc_hooks.api.app import web_app
from ogdc_hooks.argo.phases import partitions_of
from ogdc_hooks.forges.github.forge import GitHubForge
from ogdc_hooks.runstate import Partitions, RunState
from ogdc_hooks.settings import load_settings
from ogdc_hooks.ui import present
from ogdc_hooks.ui.session import COOKIE, CSP
from ogdc_hooks.ui.views import BadFilter, _next, run_filter
from tests.support.service import DEFAULT_SECRETS


def test_filters_read_as_the_run_store_takes_them() -> None:
    where = run_filter(
        {
            "branch": "main",
            "pusher": "alice",
            "state": "failed",
            "from": "2026-01-02",
            "to": "2026-01-02",
        }
    )
    assert where.ref == "refs/heads/main"
    assert where.requested_by == "alice"
    assert where.state is RunState.FAILED
    assert where.created_from == datetime(2026, 1, 2, tzinfo=UTC)
    assert where.created_before == datetime(2026, 1, 3, tzinfo=UTC)  # the whole last day
    assert run_filter({"repository": "  ", "recipe": ""}).repository is None


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"state": "broken"}, "state: one of queued"),
        ({"from": "02/01/2026"}, "from: a date as YYYY-MM-DD"),
        ({"recipe": "a\x00b"}, "recipe: at most 300 characters, no control characters"),
        ({"repository": "x" * 301}, "repository: at most 300"),
    ],
)
def test_a_bad_filter_is_refused_in_words(query: dict[str, str], words: str) -> None:
    with pytest.raises(BadFilter, match=words):
        run_filter(query)


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/ui/runs/1", "/ui/runs/1"),
        ("//evil.example", None),
        ("https://evil.example/", None),
        ("/\\evil.example", None),
        (None, None),
    ],
)
def test_sign_in_returns_only_to_our_own_pages(target: str | None, kept: str | None) -> None:
    assert _next(target) == kept


def test_durations_read_as_people_write_them() -> None:
    assert [present.duration(s) for s in (None, 4.4, 65, 7260)] == ["", "4s", "1m 05s", "2h 01m"]


def test_every_state_has_words_and_a_colour() -> None:
    assert {state: present.badge(state)[1] for state in RunState}[RunState.TIMED_OUT] == "timed out"


def test_the_steps_of_a_dag_and_of_steps() -> None:
    dag = {
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {"name": "fetch", "template": "fetch"},
                            {"name": "cmd-0", "depends": "fetch", "withSequence": {"count": "3"}},
                            {"name": "publish", "depends": "cmd-0.Succeeded && fetch"},
                        ]
                    },
                }
            ],
        }
    }
    shown = [(s.name, s.after, s.fans_out) for s in present.steps(dag)]
    assert shown == [
        ("fetch", (), False),
        ("cmd-0", ("fetch",), True),
        ("publish", ("cmd-0", "fetch"), False),
    ]
    steps = {
        "spec": {
            "entrypoint": "m",
            "templates": [{"name": "m", "steps": [[{"name": "a"}], [{"name": "b"}]]}],
        }
    }
    assert [(s.name, s.after) for s in present.steps(steps)] == [("a", ()), ("b", ("a",))]


def test_partitions_are_counted_per_fan_out_step() -> None:
    nodes: dict[str, Any] = {
        "root": {"displayName": "wf", "phase": "Running"},
        "a": {"displayName": "cmd-0(0:0)", "phase": "Succeeded"},
        "b": {"displayName": "cmd-0(1:1)", "phase": "Pending"},
        "c": {"displayName": "cmd-0(2:2)", "phase": "Error"},
        "d": {"displayName": "fetch", "phase": "Succeeded"},
    }
    assert partitions_of({"status": {"nodes": nodes}}) == [Partitions("cmd-0", 1, 1, 1)]
    assert partitions_of({}) == []


def test_problems_link_to_their_line_on_the_forge() -> None:
    settings = load_settings({**DEFAULT_SECRETS})
    forge = GitHubForge(None, settings)
    run: Any = type(
        "Run",
        (),
        {
            "repository": "o/r",
            "commit_sha": "abc",
            "problems": [
                {
                    "path": "recipes/a b/meta.yml",
                    "line": 3,
                    "column": 9,
                    "key_path": "workflow.type",
                    "message": "not a workflow type",
                    "severity": "error",
                },
            ],
        },
    )()
    [shown] = present.problems(forge, run)
    assert shown.where == "recipes/a b/meta.yml:3:9"
    assert shown.text == "workflow.type: not a workflow type"
    assert shown.url == "https://github.com/o/r/blob/abc/recipes/a%20b/meta.yml#L3"


@pytest.fixture
async def client(aiohttp_client: Any) -> TestClient[Any, Any]:
    """The application's HTTP side (no database: only pages that need none are asked for)."""
    app = web_app(load_settings({**DEFAULT_SECRETS, "API_ROOT_PATH": "/api"}))
    return await aiohttp_client(app)


async def test_pages_need_a_session_and_carry_the_headers(client: TestClient[Any, Any]) -> None:
    answer = await client.get("/api/ui/", allow_redirects=False)
    assert answer.status == 303
    assert answer.headers["Location"] == "/api/ui/login?next=/api/ui/"
    assert answer.headers["Content-Security-Policy"] == CSP
    answer = await client.get("/api/ui/login")
    assert answer.status == 200
    assert "'unsafe-inline'" not in answer.headers["Content-Security-Policy"]
    cookie = answer.cookies[COOKIE]
    assert (cookie["httponly"], cookie["samesite"], cookie["path"]) == (True, "Strict", "/api/ui")
    assert not cookie["secure"]  # plain http here


async def test_a_form_without_its_csrf_token_is_refused(client: TestClient[Any, Any]) -> None:
    await client.get("/api/ui/login")  # a session with a CSRF token
    answer = await client.post(
        "/api/ui/login", data={"username": "admin", "password": "x" * 10, "csrf": "guess"}
    )
    assert answer.status == 403
    assert "no valid CSRF token" in await answer.text()


async def test_only_the_dashboard_files_are_served(client: TestClient[Any, Any]) -> None:
    answer = await client.get("/api/ui/static/ui.js")
    assert (answer.status, answer.content_type) == (200, "text/javascript")
    answer = await client.get("/api/ui/static/highlight.css")
    assert ".highlight" in await answer.text()
    for name in ("..%2F__init__.py", "nothing.css", "present.py"):
        answer = await client.get(f"/api/ui/static/{name}")
        assert answer.status == 404, name


async def test_read_only_refuses_the_admin_forms(aiohttp_client: Any) -> None:
    settings = load_settings({**DEFAULT_SECRETS, "ACCESS_MODE": "read_only"})
    client = await aiohttp_client(web_app(settings))
    answer = await client.post("/ui/admin/users", data={"username": "x"})
    assert answer.status == 403
    assert "ACCESS_MODE=read_only" in await answer.text()


def test_failure_details_are_shown_and_their_log_lines_are_inert() -> None:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ogdc_hooks.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    failure = {
        "classification": "user error",
        "explanation": "the command exited with 1",
        "advice": "check the input's name",
        "steps": [{"step": "step-0", "log_tail": ["ok", "<script>alert(1)</script>"]}],
    }
    html = environment.get_template("failure.html").render(failure=failure)
    assert "Why it failed: user error" in html
    assert "<h3>step-0</h3>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
