"""`ogdc-hooks submit|status|get-output|runs [show|workflow|watch|cancel|retry|rerun]`: runs through
the API."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from ogdc_hooks.cli.client import ApiClient, run_api
from ogdc_hooks.cli.errors import CommandError
from ogdc_hooks.cli.output import add_json_flag, print_json, table
from ogdc_hooks.runstate import EXIT_CODES, MEANINGS, RunState, describe

WAIT_POLL_SECONDS = 2.0
STATES = [state.value for state in RunState]
FILTERS = {
    "repository": "only runs of this repository (owner/name)",
    "commit": "only runs of this commit (full sha)",
    "recipe": "only runs of this recipe (recipes/NAME; a bare NAME means recipes/NAME)",
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `submit`, `status`, `get-output` and `runs`."""
    submit = subparsers.add_parser(
        "submit",
        help="submit a recipe from a git repository",
        description="Submit the recipe at RECIPE_PATH (github://ORG:REPO@REF/PATH, or an http(s) "
        "git URL with --ref and --path) through the API at OGDC_API_URL. The exit code says "
        "how the run stands (README: exit codes).",
    )
    submit.add_argument("recipe_path", metavar="RECIPE_PATH")
    submit.add_argument("--ref", help="branch, tag or commit (overrides the one in RECIPE_PATH)")
    submit.add_argument("--path", help="the recipe's directory, for a git URL")
    submit.add_argument("--overwrite", action="store_true", help="replace published output")
    submit.add_argument(
        "--wait", action="store_true", help="follow the run to its end, printing each change"
    )
    add_json_flag(submit)
    submit.set_defaults(func=_submit_command)

    status = subparsers.add_parser("status", help="a submitted run's status")
    status.add_argument(
        "name", metavar="NAME", help="the workflow name or the run id that submit answered"
    )
    add_json_flag(status)
    status.set_defaults(func=_status_command)

    output = subparsers.add_parser(
        "get-output", help="download a finished workflow's temporary output (a zip)"
    )
    output.add_argument("name", metavar="NAME")
    output.add_argument("--output-dir", type=Path, default=Path("."), help="default: here")
    output.set_defaults(func=_output_command)

    runs = subparsers.add_parser(
        "runs",
        help="list runs, or show, watch or print one",
        description="Without an action: the newest runs first, filtered by the options.",
    )
    _add_list_options(runs)
    actions = runs.add_subparsers(dest="runs_action", metavar="ACTION")
    _add_list_options(actions.add_parser("list", help="the newest runs first (the default)"))
    show = actions.add_parser("show", help="one run: its state, problems and every state change")
    show.add_argument("run_id", metavar="RUN_ID")
    add_json_flag(show)
    show.set_defaults(func=_show_command)
    workflow = actions.add_parser("workflow", help="the Argo Workflow rendered for a run")
    workflow.add_argument("run_id", metavar="RUN_ID")
    workflow.add_argument("--format", choices=("yaml", "json"), default="yaml")
    workflow.set_defaults(func=_workflow_command)
    watch = actions.add_parser("watch", help="print a run's state changes until it ends")
    watch.add_argument("run_id", metavar="RUN_ID")
    watch.set_defaults(func=_watch_command)
    for action, help_text in (
        ("cancel", "cancel a queued or running run (its workflow is stopped)"),
        ("retry", "run the failed steps of a run that failed in Argo again"),
        ("rerun", "run a finished run's recipe anew at its commit (a new attempt)"),
    ):
        acting = actions.add_parser(
            action,
            help=help_text,
            description=f"{help_text[:1].upper()}"
            f"{help_text[1:]}; the run's requester or an admin may.",
        )
        acting.add_argument("run_id", metavar="RUN_ID")
        add_json_flag(acting)
        acting.set_defaults(func=_act_command, action=action)


def _add_list_options(parser: argparse.ArgumentParser) -> None:
    for name, help_text in FILTERS.items():
        parser.add_argument(f"--{name}", help=help_text)
    parser.add_argument("--state", choices=STATES, help="only runs in this state")
    parser.add_argument(
        "--limit", type=int, default=20, choices=range(1, 101), metavar="1-100", help="default 20"
    )
    add_json_flag(parser)
    parser.set_defaults(func=_runs_command)


async def submit(api: ApiClient, args: argparse.Namespace) -> dict[str, Any]:
    body = {"recipe_path": args.recipe_path, "overwrite": args.overwrite}
    body |= {key: value for key in ("ref", "path") if (value := getattr(args, key))}
    answer: dict[str, Any] = await api.request("POST", "/submit", json_body=body)
    return answer


def _run_path(run_id: str, suffix: str = "") -> str:
    return f"/runs/{quote(run_id, safe='')}{suffix}"


async def follow(api: ApiClient, run_id: str, poll: float = WAIT_POLL_SECONDS) -> RunState:
    """Print each state change of the run until it finishes; return the final state."""
    seen, steps = 0, None
    while True:
        run = await api.request("GET", _run_path(run_id))
        if run.get("progress") and run["progress"] != steps:
            steps = run["progress"]
            print(f"{run['updated_at'][:19]}  {run['recipe']}: {steps} steps done", flush=True)
        events = run.get("events") or []
        for event in events[seen:]:
            line = describe(run["recipe"], RunState(event["state"]), event.get("message"))
            print(f"{event['at'][:19]}  {line}", flush=True)
        seen = len(events)
        state = RunState(run["state"])
        if state.finished:
            return state
        await asyncio.sleep(poll)


def _submit_command(args: argparse.Namespace) -> int:
    async def action(api: ApiClient) -> RunState:
        answer = await submit(api, args)
        if args.json and not args.wait:
            print_json(answer)
        else:
            print(answer.get("message", ""))
            print(f"run: {answer['run_id']}")
        if not args.wait:
            return RunState(answer["state"])
        return await follow(api, answer["run_id"])

    return EXIT_CODES[run_api(action)]


def _status_command(args: argparse.Namespace) -> int:
    answer = run_api(lambda api: api.request("GET", f"/status/{quote(args.name, safe='')}"))
    state = RunState(answer["state"])
    if args.json:
        print_json(answer)
    else:
        name = answer["recipe_workflow_name"] or "no workflow"
        print(f"{name}: {answer['status']} ({MEANINGS[state]}); run {answer['run_id']}")
    return EXIT_CODES[state]


async def _download(url: str, target: Path) -> int:
    """Fetch the artifact; the Argo Server wants ARGO_TOKEN when it is not public."""
    token = os.environ.get("ARGO_TOKEN")
    headers = (
        {"Authorization": token if token.lower().startswith("bearer ") else f"Bearer {token}"}
        if token
        else {}
    )
    size = 0
    try:
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
            if answer.status != 200:
                raise CommandError(f"the download from {url} answered HTTP {answer.status}")
            with target.open("wb") as handle:
                async for chunk in answer.content.iter_chunked(1 << 16):
                    handle.write(chunk)
                    size += len(chunk)
    except (aiohttp.ClientError, TimeoutError, OSError) as err:
        raise CommandError(f"downloading {url} failed: {err}") from None
    return size


def _output_command(args: argparse.Namespace) -> int:
    answer = run_api(lambda api: api.request("GET", f"/output/{quote(args.name, safe='')}"))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    target = args.output_dir / f"{args.name}.zip"
    try:
        size = asyncio.run(_download(answer["data_url"], target))
    except CommandError:
        target.unlink(missing_ok=True)  # no half-written zip left behind
        raise
    print(f"saved {target} ({size} bytes)")
    return 0


def _runs_command(args: argparse.Namespace) -> int:
    params = {k: v for k in (*FILTERS, "state") if (v := getattr(args, k))}
    if "recipe" in params and "/" not in params["recipe"]:
        params["recipe"] = f"recipes/{params['recipe']}"
    params["limit"] = str(args.limit)
    page = run_api(lambda api: api.request("GET", "/runs", params=params))
    if args.json:
        print_json(page)
        return 0
    rows = [
        (
            run["created_at"][:19],
            run["state"],
            run["recipe"] or "(push)",
            run["commit_sha"][:12],
            run["workflow_name"] or "-",
            run["id"],
        )
        for run in page["runs"]
    ]
    print(table(("CREATED", "STATE", "RECIPE", "COMMIT", "WORKFLOW", "RUN"), rows))
    print(f"{len(page['runs'])} of {page['total']} run(s)", file=sys.stderr)
    return 0


def _show_command(args: argparse.Namespace) -> int:
    run = run_api(lambda api: api.request("GET", _run_path(args.run_id)))
    state = RunState(run["state"])
    if args.json:
        print_json(run)
        return EXIT_CODES[state]
    print(describe(run["recipe"], state, run.get("message")))
    facts = [
        ("run", run["id"]),
        ("repository", f"{run['repository']}@{run['commit_sha'][:12]}"),
        ("ref", run.get("ref") or "-"),
        ("trigger", f"{run['trigger']} by {run.get('requested_by') or 'unknown'}"),
        ("workflow", run.get("workflow_name") or "-"),
        ("progress", f"{run['progress']} steps done" if run.get("progress") else "-"),
    ]
    print(table(("", ""), facts))
    for problem in run.get("problems") or []:
        print(problem_line(problem))
    for line in failure_lines(run.get("failure")):
        print(line)
    for event in run.get("events") or []:
        line = describe(run["recipe"], RunState(event["state"]), event.get("message"))
        print(f"{event['at'][:19]}  {line}")
    return EXIT_CODES[state]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def failure_lines(failure: dict[str, Any] | None) -> list[str]:
    """A failed run's details as `runs show` prints them: the class, why, what to try, and
    each failed step's log tail (its control characters shown as `?`, so a log cannot
    drive the terminal)."""
    if not failure:
        return []
    lines = [
        f"failure: {failure['classification']}: {failure['explanation']}",
        f"what to try: {failure['advice']}",
    ]
    for step in failure.get("steps") or []:
        lines.append(f"step {step['step']}: {step.get('message') or 'failed'}")
        if step.get("log_error"):
            lines.append(f"  its log could not be read: {step['log_error']}")
        elif not step.get("log_tail"):
            lines.append("  no log: its pod is gone, or it printed nothing")
        lines += [f"  | {_CONTROL.sub('?', line)}" for line in step.get("log_tail") or []]
    return lines


def problem_line(problem: dict[str, Any]) -> str:
    """A stored problem as validate-recipe prints it: `path:line:column: [warning: ]key: what`."""
    where = f"{problem.get('path')}:{problem.get('line')}:{problem.get('column')}"
    label = "" if problem.get("severity", "error") == "error" else "warning: "
    key = f"{problem['key_path']}: " if problem.get("key_path") else ""
    return f"{where}: {label}{key}{problem.get('message')}"


def _workflow_command(args: argparse.Namespace) -> int:
    manifest = run_api(lambda api: api.request("GET", _run_path(args.run_id, "/workflow")))
    if args.format == "json":
        print_json(manifest)
    else:
        import yaml  # only this command needs it

        print(yaml.safe_dump(manifest, sort_keys=False), end="")
    return 0


def _act_command(args: argparse.Namespace) -> int:
    """`runs cancel|retry|rerun RUN_ID`: the run as it is afterwards, a re-run's new attempt
    with its id to watch (exit 0 once done)."""
    run = run_api(lambda api: api.request("POST", _run_path(args.run_id, f"/{args.action}")))
    if args.json:
        print_json(run)
    else:
        print(describe(run["recipe"], RunState(run["state"]), run.get("message")))
        if args.action == "rerun":
            print(f"run: {run['id']}")
    return 0


def _watch_command(args: argparse.Namespace) -> int:
    return EXIT_CODES[run_api(lambda api: follow(api, args.run_id))]
