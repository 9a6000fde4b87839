"""One replica following thousands of running workflows: Argo requests, report delay, memory.

    python bench/follow_bench.py [--workflows 10000] [--baseline 100] [--seconds 60]

For each size (the baseline first), a fresh database holds that many running runs
and the fake Argo Server as many running workflows of ours (stored directly: `put`).
One ogdc-hooks process starts on them (the follower's list, then its watch), and once
its first resync has passed, 1% of the workflows move to Succeeded every second
(spread evenly over the second). Printed per size: Argo requests a minute during
that time, the delay from a phase change in Argo to the run's state recorded in
the database (what `/runs`, the CLI and the commit's check report from;
`updated_at` by the database's clock, on this machine), p50 and p99, and the
process's peak RSS (VmHWM). The runs are recorded with `reports` off, so GitHub
is not part of it. Then the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from ogdc_hooks.argo.engine import MANAGED_BY, RUN_LABEL  # noqa: E402
from tests.fakes.argo import FakeArgo  # noqa: E402
from tests.support.postgres import PostgresServer, start_postgres  # noqa: E402
from tests.support.service import DEFAULT_SECRETS, Service  # noqa: E402

SCRIPT = "gdalinfo /input_dir/*.tif > /output_dir/info.txt\n" * 20  # a spec of a few KiB
POLL_SECONDS = 10


def workflow(run_id: uuid.UUID, index: int) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": f"bench-{index:05d}",
            "labels": {**MANAGED_BY, RUN_LABEL: run_id.hex},
        },
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "script": {"image": "ghcr.io/osgeo/gdal", "source": SCRIPT}}
            ],
        },
    }


async def seed(pg: PostgresServer, database: str, argo: FakeArgo, count: int) -> list[str]:
    """`count` running runs, each with its running workflow in the fake; their names."""
    rows, names = [], []
    for index in range(count):
        run_id = uuid.uuid4()
        names.append(argo.put(workflow(run_id, index), "Running"))
        rows.append((run_id, names[-1], f"recipes/r{index:05d}", uuid.uuid4().hex + "0" * 8))
    connection = await asyncpg.connect(pg.dsn(database))
    try:
        await connection.executemany(
            "INSERT INTO runs (id, forge, repository, clone_url, commit_sha, recipe, trigger,"
            " state, workflow_name, reports) VALUES ($1, 'github.com', 'bench/recipes',"
            " 'https://github.com/bench/recipes.git', $4, $3, 'push', 'running', $2, false)",
            rows,
        )
    finally:
        await connection.close()
    return names


def vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    return 0


async def resyncs(service: Service) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(service.url + "/metrics") as got:
        text = await got.text()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("ogdc_run_follow_resyncs_total")
    )


async def recorded(pg: PostgresServer, database: str) -> dict[str, float]:
    """When each finished run was recorded (epoch seconds, the database's clock)."""
    connection = await asyncpg.connect(pg.dsn(database))
    try:
        rows = await connection.fetch(
            "SELECT workflow_name, extract(epoch FROM updated_at) AS at FROM runs"
            " WHERE state = 'succeeded'"
        )
    finally:
        await connection.close()
    return {row["workflow_name"]: float(row["at"]) for row in rows}


def measure(pg: PostgresServer, count: int, seconds: float) -> dict[str, float]:
    database = pg.create_database()
    argo = FakeArgo().start()
    env = {
        **pg.env(database),
        **DEFAULT_SECRETS,
        "ARGO_WORKFLOWS_SERVICE_URL": argo.url,
        "ARGO_TOKEN": argo.token,
        "OGDC_ARGO_POLL_SECONDS": str(POLL_SECONDS),
    }
    service = Service(env).start()  # creates the schema
    service.stop()
    names = asyncio.run(seed(pg, database, argo, count))
    service = Service(env).start()
    try:
        while asyncio.run(resyncs(service)) < 1:
            time.sleep(0.2)
        assert service.process is not None
        requests_before = len(argo.requests)
        changed: dict[str, float] = {}
        started = time.monotonic()
        gap = 1.0 / max(1, count // 100)  # 1% a second, spread evenly over the second
        for index, name in enumerate(names):
            due = started + index * gap
            if due - started >= seconds:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            changed[name] = time.time()
            argo.set_phase(name, "Succeeded")
        minutes = (time.monotonic() - started) / 60
        requests = len(argo.requests) - requests_before
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = asyncio.run(recorded(pg, database))
            if all(name in done for name in changed):
                break
            time.sleep(0.5)
        delays = sorted(max(0.0, done[name] - at) for name, at in changed.items() if name in done)
        return {
            "requests_per_minute": requests / minutes,
            "p50": statistics.median(delays),
            "p99": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
            "missing": len(changed) - len(delays),
            "rss": vm(service.process.pid, "VmHWM"),
            "changes": len(changed),
        }
    finally:
        service.stop()
        argo.stop()
        pg.drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    pg = start_postgres()
    rows = {size: measure(pg, size, args.seconds) for size in (args.baseline, args.workflows)}
    print(
        f"{'workflows':>10} {'changes':>8} {'Argo req/min':>13} {'delay p50 s':>12} "
        f"{'delay p99 s':>12} {'peak RSS MiB':>13} {'unrecorded':>10}"
    )
    for size, row in rows.items():
        print(
            f"{size:>10} {row['changes']:>8.0f} {row['requests_per_minute']:>13.1f} "
            f"{row['p50']:>12.3f} {row['p99']:>12.3f} {row['rss'] / 2**20:>13.0f} "
            f"{row['missing']:>10.0f}"
        )
    base, big = rows[args.baseline], rows[args.workflows]
    ratios = {
        "requests/min": (big["requests_per_minute"] or 1) / (base["requests_per_minute"] or 1),
        "delay p50": big["p50"] / max(base["p50"], 1e-9),
        "delay p99": big["p99"] / max(base["p99"], 1e-9),
    }
    print("ratio to the baseline: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    met = all(v <= 2 for v in ratios.values()) and big["rss"] < 400 * 2**20
    print(f"target: within 2x and RSS < 400 MiB ({'met' if met else 'MISSED'})")


if __name__ == "__main__":
    main()
