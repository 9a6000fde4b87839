"""Git for the pipeline: fetch exactly one commit into a temporary work tree, diff commits,
resolve a ref. Blocking (GitPython and git processes): call through `asyncio.to_thread`.

Repositories are hostile input and tokens are secrets, so every git process runs
with: only http(s) transports, no hooks, no system or user configuration, no
credential helpers or prompts, and the token as an `http.extraHeader` passed in
`GIT_CONFIG_*` environment variables, never in argv, `.git/config`, a log or an
error message. A whole checkout has one time budget (the process group is killed
when it runs out) and one size budget (the fetched objects are watched while
they arrive, and the work tree's size is known from the tree before checkout).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit, urlunsplit

import git

log = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_NULL_SHA = re.compile(r"0+")
_POLL_S = 0.1
_MAX_DETAIL = 500
# What git's stderr says when retrying cannot help; anything else (connection refused,
# DNS, TLS, early EOF, 5xx, 429) is worth another try.
_PERMANENT = re.compile(
    r"not our ref|couldn't find remote ref|no such remote ref|could not read (username|password)"
    r"|authentication failed|returned error: (401|403|404)|repository '[^']*' not found"
    r"|does not appear to be a git repository",
    re.IGNORECASE,
)
_REFUSED = re.compile(
    r"could not read (username|password)|authentication failed|returned error: 40[13]", re.I
)


class GitError(Exception):
    """A git operation failed; `transient` says whether trying again later may help.

    The message names the repository (never its credentials) and the commit.
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class RepositoryTooLarge(GitError):
    """The fetched objects or the work tree would exceed the size limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


@dataclass(frozen=True)
class _Remote:
    """A repository URL split into what may be shown and what must stay secret."""

    url: str  # without user information: safe for argv, messages and logs
    env: Mapping[str, str]  # git's environment, with the credentials if any
    secrets: tuple[str, ...]  # every form of the credentials, to scrub from git's output

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "**********")
        return re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@", r"\1", text)


def _git_env(extra_config: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """Environment for every git process: isolated from host config, no prompts, no hooks."""
    config = [
        ("protocol.allow", "never"),
        ("protocol.https.allow", "always"),
        ("protocol.http.allow", "always"),
        ("core.hooksPath", os.devnull),
        ("credential.helper", ""),
        ("core.askPass", ""),
        ("gc.auto", "0"),
        # Keep fetched packs as they arrive (index-pack writes while it reads), instead of
        # unpacking objects in memory first: the size watch then sees the fetch grow.
        ("fetch.unpackLimit", "1"),
        ("maintenance.auto", "false"),
        ("advice.detachedHead", "false"),
        *extra_config,
    ]
    env = {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "GIT_ALLOW_PROTOCOL": "https:http",
        "GIT_TRACE": "0",
        "GIT_TRACE_CURL": "0",
        "GIT_TRACE_PACKET": "0",
        "GIT_CURL_VERBOSE": "0",
        "GIT_TRACE_REDACT": "1",
        "GIT_LFS_SKIP_SMUDGE": "1",
        "GIT_CONFIG_COUNT": str(len(config)),
    }
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _remote(clone_url: str, token: str | None) -> _Remote:
    """Check the URL and move any credentials (the token, or user:password in the URL) into
    an Authorization header: git sends it, nothing else sees it."""
    parts = urlsplit(clone_url)
    url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise GitError(f"cannot clone {url!r}: only http(s) URLs are allowed", transient=False)
    if (token or parts.username) and parts.scheme == "http" and not _loopback(parts.hostname):
        raise GitError(
            f"cannot clone {url!r} with credentials over plain http; use https", transient=False
        )
    if token:
        credentials = f"x-access-token:{token}"
    elif parts.username:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    else:
        return _Remote(url, _git_env(), ())
    encoded = base64.b64encode(credentials.encode()).decode()
    env = _git_env([("http.extraHeader", f"Authorization: Basic {encoded}")])
    secrets = [encoded, credentials, token or "", unquote(parts.password or "")]
    return _Remote(url, env, tuple(s for s in secrets if s))


def _loopback(host: str) -> bool:
    """Plain http is only trusted with a credential on this machine (test servers)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _is_sha(value: str) -> bool:
    return bool(_SHA.fullmatch(value))


def _commit(sha: str, repository: str) -> str:
    if not _is_sha(sha):
        raise GitError(f"{repository}: {sha!r} is not a full commit sha", transient=False)
    return sha


def _tree_bytes(path: Path) -> int:
    """Bytes used by files under `path` (symlinks counted, never followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _run(
    args: Sequence[str],
    *,
    cwd: Path | None,
    remote: _Remote,
    deadline: float,
    what: str,
    watch: Callable[[str], None] | None = None,
) -> str:
    """Run one git command under the deadline; `watch(what)` is polled and may raise to stop it.

    The process gets its own process group, so that killing it also kills the
    helpers git starts (remote-https, fetch-pack, index-pack).
    """
    started = git.Git(str(cwd) if cwd else None).execute(
        ["git", *args], as_process=True, env=dict(remote.env), start_new_session=True
    )
    process: subprocess.Popen[bytes] = cast(Any, started).proc
    while True:
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GitError(f"{what}: the time limit ran out", transient=True)
            if watch is not None:
                watch(what)
        except GitError:
            _kill(process)
            raise
        try:
            out, err = process.communicate(timeout=min(remaining, _POLL_S))
            break
        except subprocess.TimeoutExpired:
            continue
    if process.returncode != 0:
        detail = remote.scrub(err.decode("utf-8", "replace"))
        summary = _summary(detail)
        if _REFUSED.search(detail):
            summary = f"the server refused access; is the token allowed to read it? ({summary})"
        raise GitError(f"{what}: {summary}", transient=not _PERMANENT.search(detail))
    return out.decode("utf-8", "replace")


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _summary(stderr: str) -> str:
    """git's error lines, on one line, without progress chatter."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    wanted = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
    text = " ".join(wanted) or "git failed without a message"
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


@contextlib.contextmanager
def checkout(
    clone_url: str,
    commit_sha: str,
    dest_root: Path,
    *,
    token: str | None = None,
    timeout_s: float,
    max_bytes: int,
    extra_shas: Iterable[str] = (),
) -> Iterator[Path]:
    """The work tree of `commit_sha`, in a new directory under `dest_root`, removed afterwards.

    Fetches only that commit (depth 1), plus `extra_shas` (e.g. the push's
    `before` and the default branch head) so that `changed_paths` can compare
    them. An extra commit the server no longer has is skipped: `changed_paths`
    then says so. Raises `GitError`.
    """
    remote = _remote(clone_url, token)
    sha = _commit(commit_sha, remote.url)
    extras = [s for s in dict.fromkeys(extra_shas) if s != sha and not _NULL_SHA.fullmatch(s)]
    for extra in extras:
        _commit(extra, remote.url)
    deadline = time.monotonic() + timeout_s
    dest_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="checkout-", dir=dest_root))
    try:
        git.Repo.init(work).close()
        steps = _Steps(work, remote, deadline, max_bytes)
        steps.fetch_all(sha, extras)
        steps.check_tree_size(sha)
        steps.git(["checkout", "--quiet", "--detach", sha], f"checkout of {remote.url} at {sha}")
        log.info("checked out %s at %s", remote.url, sha[:12])
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class _Steps:
    """The git commands of one checkout, sharing its directory, remote and budgets."""

    work: Path
    remote: _Remote
    deadline: float
    max_bytes: int

    def git(
        self, args: Sequence[str], what: str, watch: Callable[[str], None] | None = None
    ) -> str:
        return _run(
            args, cwd=self.work, remote=self.remote, deadline=self.deadline, what=what, watch=watch
        )

    def within_size(self, what: str) -> None:
        if _tree_bytes(self.work / ".git") > self.max_bytes:
            raise RepositoryTooLarge(
                f"{what}: stopped, the fetched data grew past the limit of {self.max_bytes} bytes"
            )

    def fetch(self, shas: list[str]) -> None:
        what = f"fetch of {self.remote.url} at {' '.join(shas)}"
        args = [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--depth=1",
            "--no-recurse-submodules",
            self.remote.url,
            *shas,
        ]
        self.git(args, what, watch=self.within_size)

    def fetch_all(self, sha: str, extras: list[str]) -> None:
        """The commit and the extras in one round; if that fails for good, the commit alone
        (its failure is the error) and then each extra on its own (best effort)."""
        try:
            self.fetch([sha, *extras])
            return
        except RepositoryTooLarge:
            raise
        except GitError as err:
            if err.transient or not extras:
                raise
        self.fetch([sha])
        for extra in extras:
            try:
                self.fetch([extra])
            except RepositoryTooLarge:
                raise
            except GitError as err:
                if err.transient:
                    raise
                log.info(
                    "commit %s of %s is not available, skipped: %s", extra, self.remote.url, err
                )

    def check_tree_size(self, sha: str) -> None:
        """Refuse before checkout when the fetched objects plus the files would not fit: a
        few compressed kilobytes can hold gigabytes, and the tree tells every blob's size."""
        listing = self.git(
            ["ls-tree", "-r", "-l", "-z", sha], f"listing of {self.remote.url} at {sha}"
        )
        sizes = (entry.split(None, 4)[3] for entry in listing.split("\0") if entry)
        needed = sum(int(size) for size in sizes if size.isdigit()) + _tree_bytes(
            self.work / ".git"
        )
        if needed > self.max_bytes:
            raise RepositoryTooLarge(
                f"checkout of {self.remote.url} at {sha}: it would need {needed} bytes, "
                f"more than the limit of {self.max_bytes} bytes"
            )


def changed_paths(repo_dir: Path, base_sha: str, head_sha: str) -> list[str]:
    """Paths that differ between two commits' trees (a rename gives both paths), sorted.

    Both commits must be in the checkout (`checkout(..., extra_shas=[base_sha])`);
    works on shallow fetches since only the two trees are compared.
    """
    repo = git.Repo(repo_dir)
    repo.git.update_environment(**_git_env())
    try:
        base, head = repo.commit(base_sha), repo.commit(head_sha)
        diffs = base.diff(head)
    except (ValueError, git.BadName, git.GitCommandError) as err:
        raise GitError(
            f"cannot compare {base_sha} with {head_sha}: a commit is not in the checkout "
            f"({type(err).__name__})",
            transient=False,
        ) from None
    finally:
        repo.close()
    paths = {path for diff in diffs for path in (diff.a_path, diff.b_path) if path}
    return sorted(paths)


def resolve_ref(
    clone_url: str, ref: str, token: str | None = None, *, timeout_s: float = 60.0
) -> str | None:
    """The commit sha `ref` names on the server (a full sha is returned as is); None if no
    such ref. A short name is looked up as git does: tag, then branch; `HEAD` is the
    default branch. Raises `GitError` when the server cannot be asked."""
    if _is_sha(ref.lower()):
        return ref.lower()
    remote = _remote(clone_url, token)
    if ref == "HEAD" or ref.startswith("refs/"):
        candidates = [ref]
    else:
        candidates = [f"refs/tags/{ref}", f"refs/heads/{ref}"]
    listing = _run(
        ["ls-remote", "--quiet", remote.url, *candidates, *(f"{c}^{{}}" for c in candidates)],
        cwd=None,
        remote=remote,
        deadline=time.monotonic() + timeout_s,
        what=f"looking up {ref!r} in {remote.url}",
    )
    found: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        found[name] = sha
    for name in candidates:
        # An annotated tag names a tag object; `^{}` is the commit it points at.
        if commit := found.get(f"{name}^{{}}") or found.get(name):
            return commit
    return None
