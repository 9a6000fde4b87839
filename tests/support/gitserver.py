"""A real smart-HTTP git server for tests: bare repositories served by `git http-backend`.

An aiohttp app (in its own thread, see `server_thread`) runs the CGI program
for every request, streaming the body in and the answer out, as Apache or
nginx would in front of it. Repositories allow fetching any reachable commit
by sha, as GitHub does. Optionally every request needs GitHub's Basic
credentials `x-access-token:<token>` (401 otherwise). Helpers build history
directly in the bare repositories: commits from a dict of files (symlinks and
deletions included), branches, force-pushes and tags.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest
from aiohttp import web

from ogdc_hooks.cli.gitserve import cgi_environment, http_backend
from tests.support.server_thread import ServerThread

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Recipe Author",
    "GIT_AUTHOR_EMAIL": "author@example.org",
    "GIT_COMMITTER_NAME": "Recipe Author",
    "GIT_COMMITTER_EMAIL": "author@example.org",
}
_ZERO = "0" * 40


@dataclass(frozen=True)
class Symlink:
    """A symbolic link to `target`, as a value of `GitServer.commit(files=...)`."""

    target: str


@dataclass(frozen=True)
class GitRequest:
    method: str
    path: str
    query: str
    authorized: bool  # whether the right credentials came with it (never the credentials)


class GitHttpServer:
    """A git server over HTTP in its own thread: `_handle` answers every path."""

    _server: ServerThread | None = None

    def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        # Git compresses large request bodies; whoever handles them decompresses them.
        self._server = ServerThread(app, auto_decompress=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        return self._server.url

    def clone_url(self, name: str) -> str:
        return f"{self.url}/{name}.git"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError


class GitServer(GitHttpServer):
    """Bare repositories under `root`, served at `url`; `clone_url(name)` for each."""

    def __init__(self, root: Path, *, token: str | None = None) -> None:
        self.root = root
        self.token = token  # when set, every request needs x-access-token:<token>
        self.throttle_bps: int | None = None  # when set, answers trickle out at this rate
        self._failures: list[int] = []
        self._delays: list[float] = []
        self._requests: list[GitRequest] = []
        self._clock = 1_700_000_000

    def start(self) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        return super().start()

    # -- what the test reads and breaks ----------------------------------------------------------

    @property
    def requests(self) -> list[GitRequest]:
        assert self._server is not None
        return self._server.call(lambda: list(self._requests))

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next `count` requests get `status` without reaching git."""
        assert self._server is not None
        self._server.call(lambda: self._failures.extend([status] * count))

    def delay_next(self, count: int, seconds: float) -> None:
        """The next `count` requests are answered only after `seconds` (a stalled server)."""
        assert self._server is not None
        self._server.call(lambda: self._delays.extend([seconds] * count))

    # -- building history -------------------------------------------------------------------------

    def create_repo(self, name: str, *, default_branch: str = "main") -> Path:
        path = self.root / f"{name}.git"
        _git(["init", "--quiet", "--bare", "--template=", str(path)], cwd=self.root)
        _git(["symbolic-ref", "HEAD", f"refs/heads/{default_branch}"], cwd=path)
        _git(["config", "uploadpack.allowReachableSHA1InWant", "true"], cwd=path)
        return path

    def commit(
        self,
        name: str,
        files: Mapping[str, str | bytes | Symlink | None],
        *,
        branch: str = "main",
        message: str = "change recipes",
        parent: str | None = "tip",
    ) -> str:
        """Commit `files` (path -> content, `Symlink`, or None to delete) on top of `parent`
        (default: the branch's tip; None: a root commit); move the branch there."""
        repo = self.root / f"{name}.git"
        if parent == "tip":
            parent = self.head(name, branch)
        self._clock += 60  # distinct, reproducible commit times
        with tempfile.TemporaryDirectory() as scratch:
            env = {
                **_IDENTITY,
                "GIT_INDEX_FILE": str(Path(scratch) / "index"),
                "GIT_AUTHOR_DATE": f"{self._clock} +0000",
                "GIT_COMMITTER_DATE": f"{self._clock} +0000",
            }
            _git(["read-tree", parent] if parent else ["read-tree", "--empty"], cwd=repo, env=env)
            entries = []
            for path, content in files.items():
                if content is None:
                    entries.append(f"0 {_ZERO}\t{path}")
                    continue
                mode = "120000" if isinstance(content, Symlink) else "100644"
                data = content.target if isinstance(content, Symlink) else content
                raw = data.encode() if isinstance(data, str) else data
                blob = _git(["hash-object", "-w", "--stdin"], cwd=repo, stdin=raw)
                entries.append(f"{mode} {blob}\t{path}")
            _git(
                ["update-index", "--index-info"],
                cwd=repo,
                env=env,
                stdin="\n".join(entries).encode() + b"\n",
            )
            tree = _git(["write-tree"], cwd=repo, env=env)
            parents = ["-p", parent] if parent else []
            sha = _git(["commit-tree", tree, *parents, "-m", message], cwd=repo, env=env)
        self.set_branch(name, branch, sha)
        return sha

    def bomb(self, name: str, *, width: int = 10, depth: int = 10, branch: str = "main") -> str:
        """A commit of `width ** depth` paths in a few hundred bytes (a "git bomb"): each tree
        holds `width` copies of the one below, the last ones `width` copies of one blob."""
        repo = self.root / f"{name}.git"
        entry = ("100644", "blob", _git(["hash-object", "-w", "--stdin"], cwd=repo, stdin=b"x\n"))
        for _level in range(depth):
            mode, kind, sha = entry
            listing = "".join(f"{mode} {kind} {sha}\tf{n}\n" for n in range(width))
            entry = ("040000", "tree", _git(["mktree"], cwd=repo, stdin=listing.encode()))
        self._clock += 60
        env = {**_IDENTITY, "GIT_COMMITTER_DATE": f"{self._clock} +0000"}
        sha = _git(["commit-tree", entry[2], "-m", "bomb"], cwd=repo, env=env)
        self.set_branch(name, branch, sha)
        return sha

    def set_branch(self, name: str, branch: str, sha: str) -> None:
        """Point `branch` at `sha`, whatever it pointed at before (a force-push)."""
        _git(["update-ref", f"refs/heads/{branch}", sha], cwd=self.root / f"{name}.git")

    def set_ref(self, name: str, ref: str, sha: str) -> None:
        """Point any ref at `sha`, e.g. `refs/pull/7/head` as GitHub keeps a pull request's head."""
        _git(["update-ref", ref, sha], cwd=self.root / f"{name}.git")

    def delete_branch(self, name: str, branch: str) -> None:
        _git(["update-ref", "-d", f"refs/heads/{branch}"], cwd=self.root / f"{name}.git")

    def tag(self, name: str, tag: str, sha: str, *, annotated: bool = False) -> None:
        args = ["tag", "-a", "-m", tag, tag, sha] if annotated else ["tag", tag, sha]
        _git(args, cwd=self.root / f"{name}.git", env=_IDENTITY)

    def forget_unreachable(self, name: str) -> None:
        """Drop commits no ref reaches any more, as a server's garbage collection does."""
        _git(["gc", "--quiet", "--prune=now"], cwd=self.root / f"{name}.git")

    def head(self, name: str, branch: str = "main") -> str | None:
        """The sha `branch` points at, or None if it does not exist."""
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
            cwd=self.root / f"{name}.git",
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() or None

    # -- HTTP -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        authorized = self.token is None or _basic(request) == ("x-access-token", self.token)
        self._requests.append(
            GitRequest(request.method, request.path, request.query_string, authorized)
        )
        if self._delays:
            await asyncio.sleep(self._delays.pop(0))
        if self._failures:
            return web.Response(status=self._failures.pop(0), text="unavailable\n")
        if not authorized:
            return web.Response(
                status=401,
                text="Authentication required\n",
                headers={"WWW-Authenticate": 'Basic realm="fake git"'},
            )
        return await self._backend(request)

    async def _backend(self, request: web.Request) -> web.StreamResponse:
        """Run `git http-backend` as a CGI program for this request (the service's own bridge)."""
        env = cgi_environment(request, self.root)
        env["REMOTE_USER"] = "x-access-token" if self.token else ""
        return await http_backend(request, env, self.throttle_bps)


def _basic(request: web.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return user, password


def _git(
    args: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        check=False,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})},
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.decode()}")
    return result.stdout.decode().strip()


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    """A running git server with no repositories yet and no token required."""
    server = GitServer(tmp_path / "git-server").start()
    try:
        yield server
    finally:
        server.stop()
