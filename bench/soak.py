"""Soak: two replicas of ogdc-hooks take a steady stream of pushes for a while; nothing is lost.

One command, the duration as its argument:

    python bench/soak.py [--minutes 10] [--rate 2]

Two replicas share a fresh database on the local PostgreSQL (127.0.0.1:5432,
else an embedded one), a real git server and the fake Argo Server, which ends
every workflow it is given a second later. A sender commits a change to a
recipe and delivers a signed push `--rate` times a second, to the replicas in
turn. At the end it waits for every run to finish, then prints deliveries
accepted, runs finished, lost (an accepted push without its run) and
duplicated (a run with more than one workflow in Argo), p50/p99 intake
latency and each replica's peak memory, for the first minute (the baseline)
beside the last, so a drift shows. It asserts nothing. All traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from intake_bench import SECRET, push_payload, signed_headers  # noqa: E402

from tests.fakes.argo import FakeArgo  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402
from tests.support.postgres import PostgresServer, start_postgres  # noqa: E402
from tests.support.service import DEFAULT_SECRETS, Service  # noqa: E402

META = (
    'name: "Sea Ice Soak"\nworkflow:\n  type: shell\ninput:\n  params:\n'
    '    - value: "https://data.example.org/N_202309_concentration.tif"\n'
)
FINISHED = ("succeeded", "failed", "invalid", "rejected", "error", "timed_out", "dry_run")


@dataclass
class Minute:
    """What one minute of the soak saw."""

    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    rss_kib: dict[int, int] = field(default_factory=dict)  # replica -> highest VmRSS seen


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def finish_workflows(argo: FakeArgo, stop: threading.Event) -> None:
    """The fake cluster: each created workflow runs, then succeeds a second later."""
    seen: dict[str, float] = {}
    while not stop.is_set():
        now = time.monotonic()
        for name in argo.created:
            seen.setdefault(name, now)
        for name, created in list(seen.items()):
            if now - created >= 1.0:
                argo.set_phase(name, "Succeeded")
                del seen[name]
        stop.wait(0.2)


def start_replicas(pg: PostgresServer, database: str, argo: FakeArgo) -> list[Service]:
    env = {
        **pg.env(database),
        **DEFAULT_SECRETS,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "ARGO_WORKFLOWS_SERVICE_URL": argo.url,
        "ARGO_TOKEN": argo.token,
        "OGDC_ARGO_POLL_SECONDS": "5",
    }
    replicas = [Service(env).start() for _ in range(2)]
    login = urllib.parse.urlencode(
        {"username": "admin", "password": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"]}
    ).encode()
    with urllib.request.urlopen(replicas[0].url + "/token", login, timeout=30) as answer:
        token = json.loads(answer.read())["access_token"]
    user = urllib.parse.urlencode(
        {"username": "author", "password": "a-long-password", "github_login": "recipe-author"}
    ).encode()
    request = urllib.request.Request(
        replicas[0].url + "/create_user", user, {"Authorization": f"Bearer {token}"}
    )
    urllib.request.urlopen(request, timeout=30).read()
    return replicas


def send_pushes(
    replicas: list[Service], git: GitServer, minutes: float, rate: float
) -> tuple[list[Minute], set[str]]:
    """Deliver pushes at `rate` a second for `minutes`; the accepted commits."""
    git.create_repo("recipes")
    tip = git.commit("recipes", {"README.md": "recipes\n"})
    start, accepted, per_minute = time.monotonic(), set(), [Minute()]
    index = 0
    while (elapsed := time.monotonic() - start) < minutes * 60:
        if int(elapsed // 60) >= len(per_minute):
            per_minute.append(Minute())
        minute = per_minute[-1]
        script = f"gdalinfo /input_dir/*.tif > /output_dir/{index}.txt\n"
        after = git.commit(
            "recipes", {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": script}
        )
        body = json.dumps(push_payload(git.clone_url("recipes"), tip, after)).encode()
        headers = signed_headers(body) | {"X-GitHub-Delivery": str(uuid.uuid4())}
        replica = replicas[index % len(replicas)]
        sent = time.monotonic()
        try:
            request = urllib.request.Request(replica.url + "/webhooks/github", body, headers)
            with urllib.request.urlopen(request, timeout=30) as answer:
                ok = answer.status == 202
        except OSError:
            ok = False
        minute.latencies.append(time.monotonic() - sent)
        if ok:
            accepted.add(after)
            tip = after
        else:
            minute.refused += 1
        for number, service in enumerate(replicas):
            assert service.process is not None
            minute.rss_kib[number] = max(
                minute.rss_kib.get(number, 0), rss_kib(service.process.pid)
            )
        index += 1
        time.sleep(max(0.0, start + index / rate - time.monotonic()))
    return per_minute, accepted


async def outcome(pg: PostgresServer, database: str, accepted: set[str], argo: FakeArgo) -> str:
    """Wait (up to 5 minutes) for every run to finish, then count what ended how."""
    connection = await asyncpg.connect(pg.dsn(database))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            unfinished = await connection.fetchval(
                "SELECT count(*) FROM runs WHERE NOT (state = ANY($1::text[]))", list(FINISHED)
            )
            if not unfinished:
                break
            await asyncio.sleep(1)
        rows = await connection.fetch("SELECT commit_sha, state, workflow_name FROM runs")
    finally:
        await connection.close()
    with_run = {row["commit_sha"] for row in rows}
    finished = sum(row["state"] in FINISHED for row in rows)
    workflows = [name for name in argo.created if name]
    ours = [row["workflow_name"] for row in rows if row["workflow_name"]]
    return (
        f"accepted {len(accepted)} pushes; runs {len(rows)}, finished {finished}; "
        f"lost {len(accepted - with_run)}; duplicated {len(workflows) - len(set(ours))} "
        f"(workflows in Argo {len(workflows)}, recorded {len(set(ours))})"
    )


def report(per_minute: list[Minute], replicas: list[Service]) -> None:
    print(f"{'minute':>6} {'pushes':>6} {'refused':>7} {'p50 ms':>7} {'p99 ms':>7}  RSS MiB")
    for number, minute in enumerate(per_minute, 1):
        ordered = sorted(minute.latencies) or [0.0]
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        rss = " ".join(f"{kib / 1024:.0f}" for kib in minute.rss_kib.values())
        label = f"{number}{' (baseline)' if number == 1 else ''}"
        print(
            f"{label:>6} {len(minute.latencies):>6} {minute.refused:>7} "
            f"{statistics.median(ordered) * 1000:>7.1f} {p99 * 1000:>7.1f}  {rss}"
        )
    for number, service in enumerate(replicas):
        assert service.process is not None
        print(f"replica {number}: peak RSS {rss_kib(service.process.pid, 'VmHWM') / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--rate", type=float, default=2.0, help="pushes a second (default 2)")
    args = parser.parse_args()
    pg = start_postgres()
    database = pg.create_database()
    argo = FakeArgo().start()
    git = GitServer(Path(tempfile.mkdtemp(prefix="soak-git-"))).start()
    stop = threading.Event()
    cluster = threading.Thread(target=finish_workflows, args=(argo, stop), daemon=True)
    cluster.start()
    replicas = start_replicas(pg, database, argo)
    try:
        per_minute, accepted = send_pushes(replicas, git, args.minutes, args.rate)
        summary = asyncio.run(outcome(pg, database, accepted, argo))
        report(per_minute, replicas)
        print(summary)
    finally:
        stop.set()
        for service in replicas:
            service.stop()
        git.stop()
        argo.stop()
        pg.drop_database(database)


if __name__ == "__main__":
    main()
