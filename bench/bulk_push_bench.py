"""A push that changes 500 recipes, through the real service, beside a one-recipe push x 500.

    python bench/bulk_push_bench.py [--recipes 500] [--failures 5]

The service (`python -m ogdc_hooks serve`, a GitHub App) runs on a fresh database on
the local PostgreSQL (127.0.0.1:5432, else an embedded one), a real git server, the
fake Argo Server (a thread plays the cluster: each created workflow runs, then ends
a second later; `--failures` of the bulk push's fail) and the fake GitHub, which enforces
GitHub's secondary limits on content creation at their real values (80 a minute,
500 an hour per installation) and answers 403 past them. The service's write
budget is its default (the same numbers).

Each measurement starts a fresh service and warms it up with a one-recipe push (not
measured: it starts the recipe worker processes), then:

1. Baseline: one push changing one recipe; the times from the
   push to the workflow's submission and to its check's completion, the GitHub
   requests made, and the service's peak RSS. Scaled x 500 (measured once, then
   multiplied: 500 such pushes one after another), since 500 one-recipe pushes
   would need 500 checks, more writes than GitHub allows in an hour.
2. Bulk: one push changing `--recipes` recipes; push to all
   submitted, push to all reported (the summary check completed, listing every
   recipe, and every failure's own check completed), GitHub requests (writes and
   reads), 403s, and the service's peak RSS (main process, and its recipe worker
   processes).

It asserts nothing; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from intake_bench import SECRET, signed_headers  # noqa: E402

from tests.fakes.argo import FakeArgo  # noqa: E402
from tests.fakes.github import FakeGitHub, generate_app_key  # noqa: E402
from tests.pipeline.conftest import (  # noqa: E402
    KNOWN_LOGIN,
    META,
    REPO,
    SCRIPT,
    fake_github,
    github_app_env,
    push_payload,
)
from tests.support.gitserver import GitServer  # noqa: E402
from tests.support.postgres import PostgresServer, start_postgres  # noqa: E402
from tests.support.service import DEFAULT_SECRETS, Service  # noqa: E402

T = TypeVar("T")
SUMMARY = "ogdc summary"
SUMMARY_THRESHOLD = 20  # OGDC_SUMMARY_CHECK_THRESHOLD's default: more recipes get a summary
CONTENT = ("POST", "PATCH", "PUT", "DELETE")


class Loop:
    """An event loop in a thread, for the fake GitHub (an aiohttp server)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def read(self, read: Callable[[], T]) -> T:
        """`read()` on the loop's thread: the fake's state is changed only there."""

        async def inside() -> T:
            return read()

        return self.run(inside())


@dataclass
class Cluster:
    """The fake cluster: each created workflow runs, then ends a second later; the next
    `failing` to end fail (set before the bulk push)."""

    argo: FakeArgo
    stop: threading.Event
    failing: int = 0

    def run(self) -> None:
        started: dict[str, float] = {}
        while not self.stop.is_set():
            now = time.monotonic()
            for name in self.argo.created:
                if name not in started:
                    started[name] = now
                    self.argo.set_phase(name, "Running")
            for name, at in list(started.items()):
                if at and now - at >= 1.0:
                    failed = self.failing > 0
                    self.failing -= failed
                    self.argo.set_phase(name, "Failed" if failed else "Succeeded")
                    started[name] = 0.0
            self.stop.wait(0.2)


@dataclass
class Outcome:
    recipes: int
    submitted_s: float
    reported_s: float
    writes: int
    reads: int
    refused: int  # 403 answers (the fake gives them for the secondary limits)
    rss_mib: float  # the service's main process
    workers_mib: float  # its recipe worker processes, together


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def add_author(service: Service) -> None:
    login = urllib.parse.urlencode(
        {"username": "admin", "password": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"]}
    ).encode()
    with urllib.request.urlopen(service.url + "/token", login, timeout=30) as answer:
        token = json.loads(answer.read())["access_token"]
    user = urllib.parse.urlencode(
        {"username": "author", "password": "a-long-password", "github_login": KNOWN_LOGIN}
    ).encode()
    request = urllib.request.Request(
        service.url + "/create_user", user, {"Authorization": f"Bearer {token}"}
    )
    urllib.request.urlopen(request, timeout=30).read()


def commit_recipes(git: GitServer, repo: str, count: int, prefix: str) -> str:
    """A commit changing `count` recipes `recipes/<prefix>-<n>`."""
    files = {}
    for n in range(count):
        files[f"recipes/{prefix}-{n:03d}/meta.yml"] = META.replace("Sea Ice Test", f"Bulk {n}")
        files[f"recipes/{prefix}-{n:03d}/recipe.sh"] = SCRIPT
    return git.commit(repo, files)


@dataclass
class Bench:
    """What every measurement shares."""

    pg: PostgresServer
    env: dict[str, str]
    github: FakeGitHub
    loop: Loop
    git: GitServer
    cluster: Cluster
    failures: int


@dataclass
class Watched:
    """The service under measurement: its database connection, process and workers' peaks."""

    bench: Bench
    service: Service
    connection: asyncpg.Connection
    repo: str
    workers: dict[int, int]

    @property
    def pid(self) -> int:
        assert self.service.process is not None
        return self.service.process.pid

    def push(self, before: str, after: str, count: int) -> tuple[float, float]:
        """Deliver the push; seconds until all its runs were submitted, and all reported."""
        payload = push_payload(self.bench.git, before=before, after=after)
        payload["repository"]["clone_url"] = self.bench.git.clone_url(self.repo)
        body = json.dumps(payload).encode()
        headers = signed_headers(body) | {"X-GitHub-Delivery": str(uuid.uuid4())}
        submitted = "SELECT count(*) FROM runs WHERE workflow_name IS NOT NULL AND commit_sha = $1"
        loop, github = self.bench.loop, self.bench.github
        start = time.monotonic()
        request = urllib.request.Request(self.service.url + "/webhooks/github", body, headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 202, answer.status
        submitted_s = reported_s = 0.0
        while time.monotonic() < start + 900 and not reported_s:
            time.sleep(0.25)
            for child in children(self.pid):
                self.workers[child] = max(self.workers.get(child, 0), peak_kib(child))
            if not submitted_s and loop.run(self.connection.fetchval(submitted, after)) >= count:
                submitted_s = time.monotonic() - start
            if submitted_s and loop.read(lambda: all_reported(github, after, count)):
                reported_s = time.monotonic() - start
        return submitted_s, reported_s


def measure(bench: Bench, repo: str, count: int) -> Outcome:
    """A fresh database and service warmed up by a one-recipe push (its recipe workers
    started), then one push changing `count` recipes, until all are reported."""
    github, loop, git = bench.github, bench.loop, bench.git
    git.create_repo(repo)
    base = git.commit(repo, {"README.md": "recipes\n"})
    warm = commit_recipes(git, repo, 1, "warm-up")
    after = commit_recipes(git, repo, count, "bulk")
    database = bench.pg.create_database()
    service = Service({**bench.pg.env(database), **bench.env}).start()
    try:
        add_author(service)
        connection = loop.run(asyncpg.connect(bench.pg.dsn(database)))
        watched = Watched(bench, service, connection, repo, {})
        watched.push(base, warm, 1)
        first_request = loop.read(lambda: len(github.requests))
        bench.cluster.failing = bench.failures if count > 1 else 0
        submitted_s, reported_s = watched.push(warm, after, count)
        loop.run(connection.close())
        made = loop.read(lambda: list(github.requests[first_request:]))
        return Outcome(
            recipes=count,
            submitted_s=submitted_s,
            reported_s=reported_s,
            writes=sum(r.method in CONTENT for r in made),
            reads=sum(r.method == "GET" for r in made),
            refused=sum(r.status == 403 for r in made),
            rss_mib=peak_kib(watched.pid) / 1024,
            workers_mib=sum(watched.workers.values()) / 1024,
        )
    finally:
        service.stop()
        bench.pg.drop_database(database)


def all_reported(github: FakeGitHub, sha: str, count: int) -> bool:
    """Every recipe's final state is on the commit: in its own completed check (one recipe,
    or a failure of a big push) or in the completed summary check listing every recipe."""
    runs = github.runs(REPO, sha)
    if count <= SUMMARY_THRESHOLD:  # no summary check: a check per recipe
        return len(runs) >= count and all(run.status == "completed" for run in runs)
    summary = [run for run in runs if run.name == SUMMARY and run.status == "completed"]
    own = [run for run in runs if run.name != SUMMARY]
    return (
        bool(summary)
        and summary[-1].output.get("summary", "").count("\n- [`") == count
        and all(run.status == "completed" for run in own)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=int, default=500, help="recipes in the bulk push")
    parser.add_argument("--failures", type=int, default=5, help="workflows that fail")
    args = parser.parse_args()
    pg = start_postgres()
    argo = FakeArgo().start()
    git = GitServer(Path(tempfile.mkdtemp(prefix="bulk-git-"))).start()
    loop, key = Loop(), generate_app_key()
    github = fake_github(key)  # GitHub's secondary limits at their real values
    loop.run(github.start())
    stop = threading.Event()
    cluster = Cluster(argo, stop)
    threading.Thread(target=cluster.run, daemon=True).start()
    env = {
        **github_app_env(github, argo, key, SECRET),
        "OGDC_ARGO_POLL_SECONDS": "2",
        "OGDC_MAX_RECIPES_PER_PUSH": str(max(args.recipes, 50)),
        "OGDC_RECONCILE_SECONDS": "0",  # the fake App has no webhook deliveries to look at
    }
    try:
        bench = Bench(pg, env, github, loop, git, cluster, args.failures)
        one = measure(bench, "one", 1)
        bulk = measure(bench, "bulk", args.recipes)
    finally:
        stop.set()
        loop.run(github.stop())
        git.stop()
        argo.stop()
    print_table(one, bulk)


def print_table(one: Outcome, bulk: Outcome) -> None:
    n = bulk.recipes
    rows = [
        ("push to all submitted (s)", one.submitted_s * n, bulk.submitted_s),
        ("push to all reported (s)", one.reported_s * n, bulk.reported_s),
        ("GitHub writes (POST/PATCH)", one.writes * n, bulk.writes),
        ("GitHub reads (GET)", one.reads * n, bulk.reads),
        ("GitHub 403 answers", one.refused * n, bulk.refused),
        ("peak RSS service (MiB)", one.rss_mib, bulk.rss_mib),
        ("peak RSS recipe workers (MiB)", one.workers_mib, bulk.workers_mib),
    ]
    print(f"{'':32} {'1 recipe x ' + str(n):>16} {str(n) + ' in one push':>16} {'ratio':>7}")
    for label, base, value in rows:
        ratio = f"{base / value:.1f}x" if value else "-"
        print(f"{label:32} {base:>16.1f} {value:>16.1f} {ratio:>7}")
    print(
        f"(baseline: one push measured once, times and requests x {n}; RSS as measured. "
        f"{one.writes * n} writes would take at least {one.writes * n / 500:.1f} h at GitHub's "
        f"500 an hour. One push alone: submitted {one.submitted_s:.2f} s, "
        f"reported {one.reported_s:.2f} s.)"
    )


if __name__ == "__main__":
    main()
