"""`ogdc-hooks dev send-push DIR`: the whole push flow on one machine, without a forge.

It serves the local repository DIR over smart HTTP on 127.0.0.1, signs a push
delivery for its checked-out commit the way GitHub does (`X-Hub-Signature-256`,
HMAC-SHA256 of the body with the webhook secret) and posts it to a running
service's `/webhooks/github`. It keeps serving until the service has fetched
the commit (and, a partial fetch, the changed recipes' files: until git has been
silent for two seconds), then says where to follow the runs. The payload has the fields of
GitHub's push event that ogdc-hooks reads (GitHub's webhook docs, "push").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ogdc_hooks.cli.client import connect_failure_reason
from ogdc_hooks.cli.errors import CommandError
from ogdc_hooks.cli.gitserve import cgi_environment, http_backend

ZERO_SHA = "0" * 40
DEFAULT_SERVICE = "http://127.0.0.1:8000"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    dev = subparsers.add_parser("dev", help="try the service on one machine")
    actions = dev.add_subparsers(dest="dev_action", metavar="ACTION", required=True)
    push = actions.add_parser(
        "send-push",
        help="send a signed push of a local recipe repository to a running service",
        description="Serve the git repository DIR on 127.0.0.1, send the service a push "
        "delivery for its checked-out commit (against the commit before it, or --all), and "
        "wait until the service has fetched it.",
    )
    push.add_argument("directory", metavar="DIR", type=Path, help="a git repository")
    push.add_argument(
        "--url",
        default=os.environ.get("OGDC_API_URL", DEFAULT_SERVICE),
        help=f"the service, with its API_ROOT_PATH (default: OGDC_API_URL, else {DEFAULT_SERVICE})",
    )
    push.add_argument(
        "--login",
        default="ogdc-dev",
        help="the GitHub login of the pusher (default ogdc-dev); a user must have it",
    )
    push.add_argument(
        "--all", action="store_true", help="count every recipe as changed (a first push)"
    )
    push.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    push.set_defaults(func=send_push_command)


@dataclass(frozen=True)
class LocalRepository:
    git_dir: Path
    head: str
    before: str
    branch: str
    name: str


def _git(directory: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(directory), *args], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def local_repository(directory: Path, everything: bool) -> LocalRepository:
    """The facts of the push: the checked-out commit, the one before it, the branch."""
    git_dir = _git(directory, "rev-parse", "--absolute-git-dir")
    head = _git(directory, "rev-parse", "--verify", "HEAD^{commit}")
    if not git_dir or not head:
        raise CommandError(f"{directory} is not a git repository with a commit: git init, commit")
    branch = _git(directory, "symbolic-ref", "--short", "HEAD")
    if not branch:
        raise CommandError(f"{directory} has no branch checked out: git switch BRANCH first")
    before = "" if everything else _git(directory, "rev-parse", "--verify", "HEAD~1^{commit}")
    name = directory.resolve().name or "recipes"
    return LocalRepository(Path(git_dir), head, before or ZERO_SHA, branch, name)


def push_payload(repo: LocalRepository, clone_url: str, login: str) -> dict[str, Any]:
    """A push event as GitHub sends it, with the fields ogdc-hooks reads."""
    full_name = f"local/{repo.name}"
    return {
        "ref": f"refs/heads/{repo.branch}",
        "before": repo.before,
        "after": repo.head,
        "created": repo.before == ZERO_SHA,
        "deleted": False,
        "forced": False,
        "repository": {
            "name": repo.name,
            "full_name": full_name,
            "owner": {"login": "local"},
            "clone_url": clone_url,
            "html_url": clone_url,
            "default_branch": repo.branch,
            "private": True,
        },
        "pusher": {"name": login},
        "sender": {"login": login, "type": "User"},
        "head_commit": {"id": repo.head},
        "commits": [],
    }


def signed(payload: dict[str, Any], secret: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={digest}",
        "User-Agent": "GitHub-Hookshot/ogdc-hooks-dev",
    }
    return headers, body


def send_push_command(args: argparse.Namespace) -> int:
    secret = os.environ.get("GITHUB_WEBHOOK_SECRET")
    if not secret:
        raise CommandError(
            "set GITHUB_WEBHOOK_SECRET to the secret the service was started with "
            "(without one its /webhooks/github answers 503)"
        )
    repo = local_repository(args.directory, args.all)
    return asyncio.run(_send(repo, args.url.rstrip("/"), secret, args.login, args.timeout))


_QUIET_S = 2.0  # after the first fetch, the service is done when git is this long silent


async def _send(repo: LocalRepository, service: str, secret: str, login: str, wait: float) -> int:
    fetched = asyncio.Event()
    loop = asyncio.get_running_loop()
    busy = {"requests": 0, "since": loop.time()}
    answered = asyncio.Event()

    async def serve(request: web.Request) -> web.StreamResponse:
        busy["requests"] += 1
        try:
            env = cgi_environment(request, repo.git_dir.parent)
            answer = await http_backend(request, env)
        finally:
            busy["requests"] -= 1
            busy["since"] = loop.time()
            answered.set()
        if request.method == "POST" and request.path.endswith("/git-upload-pack"):
            fetched.set()  # the commit's trees went out (its recipes' files may follow)
        return answer

    async def quiet() -> None:
        """Until git has been silent a while: a partial fetch asks for files afterwards."""
        while (left := busy["since"] + _QUIET_S - loop.time()) > 0 or busy["requests"]:
            answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered.wait(), max(left, 0.1))

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", serve)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        clone_url = f"http://{host}:{port}/{repo.git_dir.name}"
        status, detail = await _deliver(
            service, *signed(push_payload(repo, clone_url, login), secret)
        )
        print(f"the service answered {status}: {detail}")
        if status != 202:
            raise CommandError(f"the push was not taken (HTTP {status}: {detail})")
        try:
            await asyncio.wait_for(fetched.wait(), wait)
            await asyncio.wait_for(quiet(), wait)
        except TimeoutError:
            raise CommandError(
                f"the service did not fetch {repo.head[:12]} within {wait:g} s: is its "
                f"pusher {login!r} a user's GitHub login (ogdc-hooks users update NAME "
                f"--github-login {login}), and do its workers run?"
            ) from None
    finally:
        await runner.cleanup()
    print(f"the service fetched {repo.head[:12]}; follow it: ogdc-hooks runs --commit {repo.head}")
    return 0


async def _deliver(service: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    url = f"{service}/webhooks/github"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.post(url, data=body, headers=headers) as answer,
        ):
            document = await answer.json(content_type=None)
    except aiohttp.ClientConnectorError as err:
        raise CommandError(f"cannot reach {url}: {connect_failure_reason(err)}") from None
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise CommandError(f"{url} gave no usable answer ({type(err).__name__})") from None
    detail = document.get("detail") if isinstance(document, dict) else None
    return answer.status, str(detail or document)
