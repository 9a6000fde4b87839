"""Git for the pipeline: fetch exactly one commit into a temporary work tree, diff commits.
Blocking (GitPython and git processes): call through `GIT_POOL` (`run_git`), a pool of
its own, so that a slow server never holds the threads that loading and rendering use.

A big repository costs what a push changed, not what it holds: the commits come as a
partial clone (`--filter=blob:none`, depth 1: commits and trees, no file contents), git
diffs them on trees alone, and only the files of the directories asked for are fetched
(by id, in one request) and checked out (a sparse checkout). A server without partial
clone sends everything, as a plain shallow fetch would.

Repositories and git servers are hostile input and tokens are secrets, so every
git process runs with: only http(s) transports, no hooks, no system or user
configuration, no credential helpers or prompts, no redirects followed, and the
token as an `http.<origin>.extraHeader` (sent to the clone URL's own origin
only) passed in `GIT_CONFIG_*` environment variables, never in argv,
`.git/config`, a log or an error message. A whole checkout has one time budget
(the process group is killed when it runs out), one size budget (the fetched
objects are watched while they arrive, and the work tree's size is known from
the tree, streamed and stopped at the budget, before checkout) and a budget of
files. What git prints is read as it comes: stdout by a consumer that may stop
it, stderr as a bounded tail, so a server's endless noise costs nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import ipaddress
import logging
import os
import re
import selectors
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import git

log = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_NULL_SHA = re.compile(r"0+")
T = TypeVar("T")

_POLL_S = 0.1
_MAX_DETAIL = 500
_STDERR_TAIL = 16 * 1024  # the last bytes of git's stderr kept for the error message
_MAX_STDOUT = 1024 * 1024  # what a command other than ls-tree may print
_READ = 64 * 1024
DEFAULT_MAX_FILES = 100_000
DEFAULT_MAX_MEMORY = 512 * 1024 * 1024
# git under a data-segment limit (RLIMIT_DATA: heap and private writable mappings, not the
# packs it maps read-only), inherited by the helpers it starts: a server that advertises
# refs without end makes git fail instead of growing.
_LIMITED = 'ulimit -d "$0" && exec git "$@"'
# What git's stderr says when retrying cannot help: the server refuses, the repository or
# commit is not there, or the server speaks garbage (a broken or hostile server does not
# heal by itself). Anything else (connection refused, DNS, TLS, early EOF, 5xx, 429) is
# worth another try.
_PERMANENT = re.compile(
    r"not our ref|couldn't find remote ref|no such remote ref|could not read (username|password)"
    r"|authentication failed|returned error: (30\d|401|403|404)|repository '[^']*' not found"
    r"|does not appear to be a git repository|bad pack header|protocol error|bad line length"
    r"|invalid (packet|server response|ref|index-pack output)|unknown object type"
    r"|did not send all necessary objects|pack has bad object|unexpected flush packet"
    r"|out of memory|cannot allocate memory",
    re.IGNORECASE,
)
_OUT_OF_MEMORY = re.compile(r"out of memory|cannot allocate memory", re.I)
_REFUSED = re.compile(
    r"could not read (username|password)|authentication failed|returned error: 40[13]", re.I
)
_REDIRECTED = re.compile(r"returned error: 30\d|redirect", re.I)

GIT_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="git")


async def run_git(work: Callable[..., T], *args: object) -> T:
    """Run blocking git work on the git pool, not the default one that rendering uses."""
    return await asyncio.get_running_loop().run_in_executor(GIT_POOL, work, *args)


class _Children:
    """Every git process running now, so that stopping the service can kill them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.stopping = False

    def add(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.add(process)
        if self.stopping:
            _kill(process)

    def discard(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(process)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """While the service stops: every running git is killed and no new one starts, so the
        threads waiting for them end at once, with a transient error."""
        self.stopping = True
        try:
            with self._lock:
                running = list(self._running)
            for process in running:
                _signal(process)
            yield
        finally:
            self.stopping = False


CHILDREN = _Children()


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
class Remote:
    """A repository URL split into what may be shown and what must stay secret."""

    url: str  # without user information: safe for argv, messages and logs
    env: Mapping[str, str]  # git's environment, with the credentials if any
    secrets: tuple[str, ...]  # every form of the credentials, to scrub from git's output
    authorization: str | None = None  # the Authorization header's value, for the origin only

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "**********")
        return re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@", r"\1", text)


def _git_env(extra_config: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """Environment for every git process: isolated from host config, no prompts, no hooks,
    no redirects (another origin would get the requests, and an internal one be reached)."""
    config = [
        ("http.followRedirects", "false"),
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
        "GIT_LITERAL_PATHSPECS": "1",  # a path from the repository is a path, never a glob
        "GIT_CONFIG_COUNT": str(len(config)),
    }
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


@dataclass(frozen=True)
class GitToken:
    """A forge token and the user name that forge wants with it in HTTP basic auth."""

    user: str
    secret: str


def remote_of(clone_url: str, token: str | None, token_user: str | None = None) -> Remote:
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
        if not token_user:
            raise ValueError("a token needs the user name its forge expects with it")
        credentials = f"{token_user}:{token}"
    elif parts.username:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    else:
        return Remote(url, _git_env(), ())
    encoded = base64.b64encode(credentials.encode()).decode()
    # Scoped to the origin: git sends it to no other URL, whatever the server answers.
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"
    env = _git_env([(f"http.{origin}.extraHeader", f"Authorization: Basic {encoded}")])
    secrets = [encoded, credentials, token or "", unquote(parts.password or "")]
    return Remote(url, env, tuple(s for s in secrets if s), f"Basic {encoded}")


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


class _Output:
    """What git printed: stdout handed to `consume` (which may raise to stop git) or kept up
    to `_MAX_STDOUT`, stderr kept as a bounded tail."""

    def __init__(self, consume: Callable[[bytes], None] | None, what: str) -> None:
        self.consume = consume
        self.what = what
        self.stdout = bytearray()
        self.stderr_tail = bytearray()

    def out(self, chunk: bytes) -> None:
        if self.consume is not None:
            self.consume(chunk)
            return
        self.stdout += chunk
        if len(self.stdout) > _MAX_STDOUT:
            raise GitError(
                f"{self.what}: git printed more than {_MAX_STDOUT} bytes; the server's answer "
                "is not what a repository sends",
                transient=False,
            )

    def err(self, chunk: bytes) -> None:
        self.stderr_tail += chunk
        del self.stderr_tail[:-_STDERR_TAIL]


def _run(
    args: Sequence[str],
    *,
    cwd: Path | None,
    remote: Remote,
    deadline: float,
    what: str,
    watch: Callable[[str], None] | None = None,
    consume: Callable[[bytes], None] | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    stdin: Path | None = None,
) -> str:
    """Run one git command under the deadline and the memory limit; `watch(what)` is polled
    and may raise to stop it; `stdin` is a file git reads.

    The process gets its own process group, so that killing it also kills the
    helpers git starts (remote-https, fetch-pack, index-pack).
    """
    _refuse_if_stopping(what)
    with open(stdin or os.devnull, "rb") as source:
        process = subprocess.Popen(
            ["sh", "-c", _LIMITED, str(max_memory // 1024), *args],
            cwd=cwd,
            env={**os.environ, **remote.env},
            stdin=source,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    CHILDREN.add(process)
    output = _Output(consume, what)
    try:
        _pump(process, output, deadline, watch)
        _refuse_if_stopping(what)  # killed because the service stops: say so
    except GitError:
        _kill(process)
        raise
    finally:
        CHILDREN.discard(process)
    if process.returncode != 0:
        raise _failure(what, remote.scrub(output.stderr_tail.decode("utf-8", "replace")))
    return output.stdout.decode("utf-8", "replace")


def _pump(
    process: subprocess.Popen[bytes],
    output: _Output,
    deadline: float,
    watch: Callable[[str], None] | None,
) -> None:
    """Read both pipes as git writes them until it exits, checking the budgets meanwhile."""
    assert process.stdout is not None and process.stderr is not None
    sinks = {process.stdout.fileno(): output.out, process.stderr.fileno(): output.err}
    with selectors.DefaultSelector() as selector:
        for descriptor in sinks:
            selector.register(descriptor, selectors.EVENT_READ)
        while selector.get_map():
            _check(output.what, deadline, watch)
            for key, _events in selector.select(timeout=_POLL_S):
                chunk = os.read(key.fd, _READ)
                if chunk:
                    sinks[key.fd](chunk)
                else:
                    selector.unregister(key.fd)
    while process.poll() is None:
        _check(output.what, deadline, watch)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_POLL_S)
    process.stdout.close()
    process.stderr.close()


def _refuse_if_stopping(what: str) -> None:
    if CHILDREN.stopping:
        raise GitError(f"{what}: stopped, the service is shutting down", transient=True)


def _check(what: str, deadline: float, watch: Callable[[str], None] | None) -> None:
    _refuse_if_stopping(what)
    if time.monotonic() >= deadline:
        raise GitError(
            f"{what}: stopped, it took longer than the time limit (OGDC_GIT_TIMEOUT_SECONDS); "
            "the server is slow or the repository is large",
            transient=True,
        )
    if watch is not None:
        watch(what)


def _failure(what: str, detail: str) -> GitError:
    """git's failure in words: refused, redirected, or its own error lines."""
    summary = _summary(detail)
    if _REFUSED.search(detail):
        summary = f"the server refused access; is the token allowed to read it? ({summary})"
    elif _OUT_OF_MEMORY.search(detail):
        summary = (
            "git ran out of its memory limit (OGDC_GIT_MAX_MEMORY_BYTES): the server sends "
            f"more than a recipe repository needs ({summary})"
        )
    elif _REDIRECTED.search(detail):
        summary = (
            "the server answered with a redirect, which is not followed (the token must not "
            f"go elsewhere); give the repository's own address ({summary})"
        )
    return GitError(f"{what}: {summary}", transient=not _PERMANENT.search(detail))


def _signal(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _kill(process: subprocess.Popen[bytes]) -> None:
    _signal(process)
    process.wait()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def _summary(stderr: str) -> str:
    """git's error lines, on one line, without progress chatter."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    wanted = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
    text = " ".join(wanted) or "git failed without a message"
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


@contextlib.contextmanager
def fetch_trees(
    clone_url: str,
    commit_sha: str,
    dest_root: Path,
    *,
    token: str | None = None,
    token_user: str | None = None,
    timeout_s: float,
    max_bytes: int,
    max_files: int = DEFAULT_MAX_FILES,
    max_memory: int = DEFAULT_MAX_MEMORY,
    extra_shas: Iterable[str] = (),
    meet: str | None = None,
) -> Iterator[Trees]:
    """The commit `commit_sha` without its files' contents, in a new directory under
    `dest_root`, removed afterwards: `Trees.check_out` brings the files wanted.

    Fetches that commit (depth 1, commits and trees only where the server allows
    partial clone), plus `extra_shas` (e.g. the push's `before` and the default
    branch head) so that `Trees.changed_paths` can compare them. An extra commit the
    server no longer has is skipped: `Trees.changed_paths` then says so. With `meet`
    (a pull request's base tip), the histories of both are fetched deeper (still
    without files) until they share an ancestor, so that `merge_base` can find it
    (bounded by `MEET_DEPTHS` and the byte budget). The directory's name carries this
    process's id, so that a later start can remove what a killed process left
    (`remove_stale_checkouts`). Raises `GitError`.
    """
    remote = remote_of(clone_url, token, token_user)
    sha = _commit(commit_sha, remote.url)
    extras = [s for s in dict.fromkeys(extra_shas) if s != sha and not _NULL_SHA.fullmatch(s)]
    for extra in extras:
        _commit(extra, remote.url)
    deadline = time.monotonic() + timeout_s
    dest_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=dest_root))
    try:
        git.Repo.init(work).close()
        steps = _Steps(work, remote, deadline, max_bytes, max_files, max_memory)
        # A named remote: a filtered fetch makes it the promisor that missing blobs come from.
        steps.git(["config", "remote.origin.url", remote.url], f"setup for {remote.url}")
        wanted = [*extras, *([meet] if meet and meet not in extras else [])]
        present = steps.fetch_all(sha, wanted)
        met = steps.meet(sha, _commit(meet, remote.url)) if meet is not None else None
        yield Trees(steps, sha, present | {met} if met else present, met)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def checkout(
    clone_url: str,
    commit_sha: str,
    dest_root: Path,
    *,
    paths: Sequence[str] | None = None,
    **options: Any,
) -> Iterator[Path]:
    """The work tree of `commit_sha` (only the directories `paths`, when given), in a new
    directory under `dest_root`, removed afterwards; `options` as for `fetch_trees`."""
    with fetch_trees(clone_url, commit_sha, dest_root, **options) as trees:
        trees.check_out(paths)
        yield trees.work


_PREFIX = "checkout-"
_OWNER = re.compile(rf"{_PREFIX}(\d+)-")


def remove_stale_checkouts(dest_root: Path) -> list[str]:
    """Remove the checkouts of processes that no longer run (a SIGKILL leaves them); the
    names removed. Checkouts of live processes (other services here) are left alone."""
    removed = []
    for entry in dest_root.glob(f"{_PREFIX}*"):
        owner = _OWNER.match(entry.name)
        if owner is not None and not _alive(int(owner.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _TreeBudget:
    """Counts the entries of `ls-tree -r [-l] -z` as they stream in (keeping only the ids
    of the files' contents); raises past a budget."""

    what: str
    max_files: int
    max_bytes: int
    files: int = 0
    size: int = 0
    blobs: set[bytes] = field(default_factory=set)  # the ids of the files' contents
    _rest: bytes = b""

    def __call__(self, chunk: bytes) -> None:
        entries = (self._rest + chunk).split(b"\0")
        self._rest = entries.pop()
        for entry in entries:
            self.files += 1
            fields = entry.partition(b"\t")[0].split()  # mode type id [size] TAB path
            if len(fields) > 3 and fields[3].isdigit():
                self.size += int(fields[3])
            if len(fields) > 2 and fields[1] == b"blob":
                self.blobs.add(fields[2])
        if self.files > self.max_files:
            raise RepositoryTooLarge(
                f"{self.what}: the commit has more than {self.max_files} files, the limit "
                "(OGDC_CLONE_MAX_FILES); recipes must live in a smaller repository"
            )
        self.check(0)

    def check(self, fetched: int) -> None:
        needed = self.size + fetched
        if needed > self.max_bytes:
            raise RepositoryTooLarge(
                f"{self.what}: it would need {needed} bytes or more, over the limit of "
                f"{self.max_bytes} bytes (OGDC_CLONE_MAX_BYTES); recipes must live in a "
                "smaller repository"
            )


@dataclass(frozen=True)
class _Steps:
    """The git commands of one checkout, sharing its directory, remote and budgets."""

    work: Path
    remote: Remote
    deadline: float
    max_bytes: int
    max_files: int = DEFAULT_MAX_FILES
    max_memory: int = DEFAULT_MAX_MEMORY

    def git(
        self,
        args: Sequence[str],
        what: str,
        watch: Callable[[str], None] | None = None,
        consume: Callable[[bytes], None] | None = None,
        stdin: Path | None = None,
    ) -> str:
        return _run(
            args,
            cwd=self.work,
            remote=self.remote,
            deadline=self.deadline,
            what=what,
            watch=watch,
            consume=consume,
            max_memory=self.max_memory,
            stdin=stdin,
        )

    def within_size(self, what: str) -> None:
        if _tree_bytes(self.work / ".git") > self.max_bytes:
            raise RepositoryTooLarge(
                f"{what}: stopped, the fetched data grew past the limit of {self.max_bytes} "
                "bytes (OGDC_CLONE_MAX_BYTES); recipes must live in a smaller repository"
            )

    def fetch(self, shas: list[str]) -> None:
        what = f"fetch of {self.remote.url} at {' '.join(shas)}"
        args = [*_FETCH, "--depth=1", "origin", *shas]
        self.git(args, what, watch=self.within_size)

    def fetch_all(self, sha: str, extras: list[str]) -> frozenset[str]:
        """The commit and the extras in one round; if that fails for good, the commit alone
        (its failure is the error) and then each extra on its own (best effort). Returns
        the commits fetched."""
        try:
            self.fetch([sha, *extras])
            return frozenset([sha, *extras])
        except RepositoryTooLarge:
            raise
        except GitError as err:
            if err.transient or not extras:
                raise
        self.fetch([sha])
        present = {sha}
        for extra in extras:
            try:
                self.fetch([extra])
                present.add(extra)
            except RepositoryTooLarge:
                raise
            except GitError as err:
                if err.transient:
                    raise
                log.info(
                    "commit %s of %s is not available, skipped: %s", extra, self.remote.url, err
                )
        return frozenset(present)

    def meet(self, sha: str, other: str) -> str | None:
        """Deepen the two commits' history (commits and trees only) until they have a merge
        base, and return it; None when none was found within `MEET_DEPTHS`."""
        for depth in (*MEET_DEPTHS, None):
            found = merge_base(self.work, sha, other)
            if found is not None or depth is None:
                return found
            what = f"fetch of the history of {sha} and {other} from {self.remote.url}"
            args = [*_FETCH, f"--depth={depth}", "origin", sha, other]
            self.git(args, what, watch=self.within_size)
        return None

    def listing(self, sha: str, paths: Sequence[str] | None, sizes: bool) -> _TreeBudget:
        """The files of the commit under `paths` (every file with None), counted as the
        listing streams and stopped at the budget of files (and, with `sizes`, of bytes:
        a few compressed kilobytes can hold gigabytes or billions of paths, and the tree
        tells every blob's size once the blob is here)."""
        what = f"checkout of {self.remote.url} at {sha}"
        budget = _TreeBudget(what, self.max_files, self.max_bytes)
        args = ["ls-tree", "-r", "-z", *(["-l"] if sizes else []), sha]
        self.git([*args, "--", *paths] if paths is not None else args, what, consume=budget)
        return budget

    def partial(self) -> bool:
        """Whether the server sent a partial clone (it may ignore the filter)."""
        what = f"setup for {self.remote.url}"
        args = ["config", "--bool", "--default", "false", "remote.origin.promisor"]
        return self.git(args, what).strip() == "true"

    def fetch_blobs(self, blobs: set[bytes]) -> None:
        """The contents of these files, in one request, as git's own lazy fetch asks for
        them (`promisor-remote.c` `fetch_objects`: no negotiation, ids on stdin)."""
        wanted = self.work / ".git" / "ogdc-wanted"
        wanted.write_bytes(b"".join(blob + b"\n" for blob in blobs))
        what = f"fetch of {len(blobs)} file(s) of {self.remote.url}"
        args = ["-c", "fetch.negotiationAlgorithm=noop", *_FETCH, "--stdin", "origin"]
        self.git(args, what, watch=self.within_size, stdin=wanted)


MEET_DEPTHS = (64, 1024, 16384)  # commits of history fetched in turn to find a merge base


def merge_base(repo_dir: Path, one: str, other: str) -> str | None:
    """git's merge base of two commits of the checkout, None when the fetched history has none."""
    repo = git.Repo(repo_dir)
    repo.git.update_environment(**_git_env())
    try:
        found = str(repo.git.merge_base(one, other)).strip()
    except git.GitCommandError:
        return None
    finally:
        repo.close()
    return found if _is_sha(found) else None


def _export(repo_dir: Path, sha: str, path: str, dest: Path) -> None:
    """Write `path` as it is at `sha` under `dest`, its files already fetched. Only regular
    files and directories are written (no links, no modes: tar's data filter)."""
    repo = git.Repo(repo_dir)
    repo.git.update_environment(**_git_env())
    try:
        buffer = io.BytesIO()
        repo.archive(buffer, sha, path=path, format="tar")
    except (ValueError, git.BadName, git.GitCommandError) as err:
        raise GitError(
            f"cannot read {path} at {sha}: {type(err).__name__}", transient=False
        ) from None
    finally:
        repo.close()
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        regular = [member for member in archive.getmembers() if member.isfile() or member.isdir()]
        archive.extractall(dest, members=regular, filter="data")


_FETCH = (
    "fetch",
    "--quiet",
    "--no-tags",
    "--no-write-fetch-head",
    "--no-recurse-submodules",
    "--filter=blob:none",
)
_UNSAFE_IN_PATTERN = re.compile(rb"[^A-Za-z0-9._/-]")


def _sparse_pattern(path: str) -> bytes:
    """A sparse-checkout pattern (gitignore syntax) for exactly this path and what is below
    it: anchored, every byte that could mean something there replaced by `?` (one byte),
    so a name from the repository can only match more, never break the file."""
    name = os.fsencode(path.strip("/"))
    return b"/" + _UNSAFE_IN_PATTERN.sub(b"?", name) + b"\n"


@dataclass(frozen=True)
class Trees:
    """A fetched commit whose files are not checked out yet (see `fetch_trees`)."""

    steps: _Steps
    sha: str
    present: frozenset[str]  # the commits fetched: this one and the extras the server had
    merge_base: str | None = None  # with `meet`: the merge base found, if any

    @property
    def work(self) -> Path:
        return self.steps.work

    def _records(self, args: Sequence[str], what: str) -> list[bytes]:
        records = _Records(what, 2 * self.steps.max_files)
        self.steps.git(args, what, consume=records)
        return records.done()

    def changed_paths(self, base_sha: str) -> list[str]:
        """Paths that differ between `base_sha` and this commit (a rename gives both
        paths), sorted. Only the two trees are compared (no rename detection, which would
        read the files), so a partial, shallow fetch does; the base must be `present`."""
        if base_sha not in self.present:
            raise GitError(
                f"cannot compare {base_sha} with {self.sha}: a commit is not in the checkout",
                transient=False,
            )
        what = f"diff of {self.steps.remote.url} between {base_sha} and {self.sha}"
        args = ["diff-tree", "-r", "--name-only", "--no-renames", "-z", base_sha, self.sha]
        return sorted({os.fsdecode(path) for path in self._records(args, what)})

    def entries(self, directory: str) -> dict[str, str]:
        """The names in `directory` of the commit, each with its mode (`040000` a directory,
        `120000` a symlink), read from the tree alone."""
        what = f"listing of {self.steps.remote.url} at {self.sha}"
        found = {}
        for entry in self._records(["ls-tree", "-z", self.sha, "--", f"{directory}/"], what):
            meta, _, path = entry.partition(b"\t")
            found[os.fsdecode(path)] = meta.split(b" ", 1)[0].decode("ascii", "replace")
        return found

    def export(self, sha: str, directory: str, dest: Path) -> bool:
        """Write `directory` as it is at commit `sha` (one of `present`, e.g. a pull
        request's merge base) under `dest`, its files fetched in one request within the
        budgets; False when `sha` was not fetched or has no such directory."""
        steps = self.steps
        if sha not in self.present:
            return False
        what = f"listing of {steps.remote.url} at {sha}"
        if not self._records(["ls-tree", "-d", "-z", sha, "--", directory], what):
            return False
        wanted = steps.listing(sha, [directory], sizes=False)
        if wanted.blobs and steps.partial():
            steps.fetch_blobs(wanted.blobs)
        steps.listing(sha, [directory], sizes=True).check(_tree_bytes(self.work / ".git"))
        _export(self.work, sha, directory, dest)
        return True

    def check_out(self, paths: Sequence[str] | None = None) -> None:
        """Check the commit out: the files under the directories `paths` only (a sparse
        checkout; none at all for an empty list), or every file with None.

        Their contents are fetched in one request; the budgets of files and bytes
        are checked before anything is written to the work tree.
        """
        steps = self.steps
        if paths is not None and not paths:
            return
        wanted = steps.listing(self.sha, paths, sizes=False)
        if wanted.blobs and steps.partial():
            steps.fetch_blobs(wanted.blobs)
        steps.listing(self.sha, paths, sizes=True).check(_tree_bytes(self.work / ".git"))
        what = f"checkout of {steps.remote.url} at {self.sha}"
        if paths is not None:
            patterns = self.work / ".git" / "info" / "sparse-checkout"
            patterns.parent.mkdir(exist_ok=True)
            patterns.write_bytes(b"".join(_sparse_pattern(path) for path in paths))
            steps.git(["config", "core.sparseCheckout", "true"], what)
        steps.git(["checkout", "--quiet", "--detach", self.sha], what)
        log.info("checked out %s at %s", steps.remote.url, self.sha[:12])


@dataclass
class _Records:
    """The NUL-separated records git prints, as they stream in; raises past `limit`."""

    what: str
    limit: int
    records: list[bytes] = field(default_factory=list)
    _rest: bytes = b""

    def __call__(self, chunk: bytes) -> None:
        entries = (self._rest + chunk).split(b"\0")
        self._rest = entries.pop()
        self.records += entries
        if len(self.records) > self.limit:
            raise RepositoryTooLarge(
                f"{self.what}: git listed more than {self.limit} paths, over what the limit "
                "of files allows (OGDC_CLONE_MAX_FILES); recipes must live in a smaller "
                "repository"
            )

    def done(self) -> list[bytes]:
        return [*self.records, self._rest] if self._rest else self.records
