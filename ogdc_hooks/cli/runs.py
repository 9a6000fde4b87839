"""`ogdc-hooks submit|status|get-output|runs`: recipe runs through the token API."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from ogdc_hooks.cli.client import ApiClient, run_api
from ogdc_hooks.cli.errors import CommandError

FINISHED_OK = {"succeeded", "dry_run"}
FINISHED_BAD = {"failed", "invalid", "rejected", "error", "timed_out"}
WAIT_POLL_SECONDS = 2.0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `submit`, `status`, `get-output` and `runs`."""
    submit = subparsers.add_parser(
        "submit",
        help="submit a recipe from a git repository",
        description="Submit the recipe at RECIPE_PATH (github://ORG:REPO@REF/PATH, or an http(s) "
        "git URL with --ref and --path) through the API at OGDC_API_URL.",
    )
    submit.add_argument("recipe_path", metavar="RECIPE_PATH")
    submit.add_argument("--ref", help="branch, tag or commit (overrides the one in RECIPE_PATH)")
    submit.add_argument("--path", help="the recipe's directory, for a git URL")
    submit.add_argument("--overwrite", action="store_true", help="replace published output")
    submit.add_argument(
        "--wait", action="store_true", help="follow the run to its end; exit 1 unless it succeeds"
    )
    submit.set_defaults(func=_submit_command)

    status = subparsers.add_parser("status", help="a submitted workflow's status")
    status.add_argument("name", metavar="NAME", help="the workflow name /submit answered")
    status.set_defaults(func=_status_command)

    output = subparsers.add_parser(
        "get-output", help="download a finished workflow's temporary output (a zip)"
    )
    output.add_argument("name", metavar="NAME")
    output.add_argument("--output-dir", type=Path, default=Path("."), help="default: here")
    output.set_defaults(func=_output_command)

    listing = subparsers.add_parser("runs", help="list recent runs, newest first")
    for name in ("repository", "commit", "recipe", "state"):
        listing.add_argument(f"--{name}")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=_runs_command)


async def submit(api: ApiClient, args: argparse.Namespace) -> dict[str, Any]:
    body = {"recipe_path": args.recipe_path, "overwrite": args.overwrite}
    body |= {key: value for key in ("ref", "path") if (value := getattr(args, key))}
    answer: dict[str, Any] = await api.request("POST", "/submit", json_body=body)
    return answer


async def follow(api: ApiClient, run_id: str, poll: float = WAIT_POLL_SECONDS) -> str:
    """Print each state change of the run until it finishes; return the final state."""
    seen = 0
    while True:
        run = await api.request("GET", f"/runs/{quote(run_id, safe='')}")
        events = run.get("events") or []
        for event in events[seen:]:
            message = f": {event['message']}" if event.get("message") else ""
            print(f"{event['at']}  {event['state']}{message}", flush=True)
        seen = len(events)
        if run["state"] in FINISHED_OK | FINISHED_BAD:
            return str(run["state"])
        await asyncio.sleep(poll)


def _submit_command(args: argparse.Namespace) -> int:
    async def action(api: ApiClient) -> int:
        answer = await submit(api, args)
        print(answer.get("message", ""))
        print(f"run: {answer['run_id']}")
        if not args.wait:
            return 0
        final = await follow(api, answer["run_id"])
        return 0 if final in FINISHED_OK else 1

    return run_api(action)


def _status_command(args: argparse.Namespace) -> int:
    answer = run_api(lambda api: api.request("GET", f"/status/{quote(args.name, safe='')}"))
    print(f"{answer['recipe_workflow_name']}: {answer['status']} ({answer['state']})")
    return 0


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
    params = {k: v for k in ("repository", "commit", "recipe", "state") if (v := getattr(args, k))}
    params["limit"] = str(args.limit)
    page = run_api(lambda api: api.request("GET", "/runs", params=params))
    rows = [("CREATED", "STATE", "RECIPE", "COMMIT", "WORKFLOW", "RUN")] + [
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
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"{len(page['runs'])} of {page['total']} run(s)", file=sys.stderr)
    return 0
