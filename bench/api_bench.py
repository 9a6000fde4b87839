"""Token API throughput: ogdc-hooks against the reference service of ogdc-runner 0.3.0.

Starts both services as subprocesses on the same local PostgreSQL (a fresh
database each, dropped at the end), then drives `GET /user` (valid token) and
`POST /token` (admin login) at several concurrency levels from a separate
load-generator process, and prints requests per second, p50/p99 latency,
errors, timeouts and the longest time without any completed response (a
stall), with the ratios ogdc-hooks / reference. It asserts nothing.

The reference runs from a scratch virtual environment that this script
creates (`bench/.cache/refvenv`, `pip install ogdc-runner==0.3.0 uvicorn`); a
small launcher replaces its engine factory, which hard-codes the host
`ogdc-db-cnpg-rw` and the database `ogdc`, so that it uses the local server.

    python bench/api_bench.py [--duration 5] [--levels 1,10,50,200] [--timeout 10]

All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load import LoadResult, LoadSpec, cpu_seconds, run_in_subprocess  # noqa: E402
from refvenv import OGDC_RUNNER, ensure_reference_venv  # noqa: E402

CACHE = HERE / ".cache"
HOST = "127.0.0.1"
ADMIN = "admin"
SERVICES = ("ogdc-hooks", "reference")
ENDPOINTS = ("GET /user", "POST /token")
PROBE_TIMEOUT = 5.0  # seconds GET /version gets to show that a service still answers

# Runs in the reference's own environment: point its engine factory at the
# local database before the app is imported, then serve it with uvicorn.
REFERENCE_LAUNCHER = """
import functools, os, sys
import uvicorn
from sqlmodel import create_engine
import ogdc_runner.service.db as db

@functools.cache
def get_engine():
    return create_engine(os.environ["BENCH_DATABASE_URL"])

db.get_engine = get_engine
uvicorn.run("ogdc_runner.service.main:app", host=sys.argv[1], port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


# ---------------------------------------------------------------- one level


@dataclass
class LevelResult(LoadResult):
    """The load generator's figures plus what the orchestrator saw of the service."""

    service_cpu_s: float = 0.0
    restarted: bool = False
    answers_after: bool = True

    @property
    def cpu_ms(self) -> float | None:
        """CPU milliseconds the service spent per request it answered."""
        answered = self.ok + self.error_count
        return self.service_cpu_s * 1000 / answered if answered else None


# ---------------------------------------------------------------- services


@dataclass
class Service:
    """One running service process."""

    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Target:
    """A service under test, (re)started on its own database whenever it stops answering."""

    name: str
    database: str
    launch: Callable[[], Service]
    password: str
    service: Service | None = None
    token: str = ""

    def start(self) -> None:
        self.service = self.launch()
        wait_ready(self.service)
        self.token = asyncio.run(_login(self.service.base_url, self.password))

    def stop(self) -> None:
        if self.service is not None:
            stop(self.service)

    def answers(self, limit: float) -> bool:
        assert self.service is not None
        return asyncio.run(_answers(f"{self.service.base_url}/version", limit))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


async def _admin_sql(pg: PgServer, statement: str) -> None:
    connection = await asyncpg.connect(host=pg.host, port=pg.port, user="postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int


@contextmanager
def scratch_databases(pg: PgServer) -> Iterator[dict[str, str]]:
    """A fresh database per service, dropped afterwards whatever happens."""
    tag = secrets.token_hex(4)
    names = {service: f"bench_{service.replace('-', '_')}_{tag}" for service in SERVICES}
    for name in names.values():
        asyncio.run(_admin_sql(pg, f'CREATE DATABASE "{name}"'))
    try:
        yield names
    finally:
        for name in names.values():
            asyncio.run(_admin_sql(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def ogdc_hooks_launcher(database: str, admin_password: str, pg: PgServer) -> Callable[[], Service]:
    def launch() -> Service:
        port = _free_port()
        env = {
            **os.environ,
            "OGDC_DB_HOST": pg.host,
            "OGDC_DB_PORT": str(pg.port),
            "OGDC_DB_NAME": database,
            "OGDC_DB_USERNAME": "postgres",
            "OGDC_DB_PASSWORD": "unused-with-trust-auth",
            "OGDC_JWT_SECRET_KEY": secrets.token_urlsafe(32),
            "OGDC_ADMIN_PASSWORD": admin_password,
            "OGDC_DATA_DIR": str(CACHE / "ogdc-hooks-data"),
            "OGDC_LOG_LEVEL": "warning",  # the reference runs without an access log too
        }
        command = [sys.executable, "-m", "ogdc_hooks", "serve", "--host", HOST, "--port", str(port)]
        return _spawn("ogdc-hooks", command, env, port)

    return launch


def reference_launcher(database: str, admin_password: str, pg: PgServer) -> Callable[[], Service]:
    python = ensure_reference_venv([OGDC_RUNNER, "uvicorn"], "ogdc_runner.service.main, uvicorn")

    def launch() -> Service:
        port = _free_port()
        env = {
            **os.environ,
            # psycopg2 is the driver ogdc-runner declares; SQLAlchemy 2.1 maps a bare
            # `postgresql://` to psycopg 3, which it does not install.
            "BENCH_DATABASE_URL": f"postgresql+psycopg2://postgres@{pg.host}:{pg.port}/{database}",
            "OGDC_DB_USERNAME": "postgres",
            "OGDC_DB_PASSWORD": "unused-with-trust-auth",
            "OGDC_JWT_SECRET_KEY": secrets.token_urlsafe(32),
            "OGDC_ADMIN_PASSWORD": admin_password,
        }
        command = [str(python), "-c", REFERENCE_LAUNCHER, HOST, str(port)]
        return _spawn("reference", command, env, port)

    return launch


def _spawn(name: str, command: list[str], env: dict[str, str], port: int) -> Service:
    log = CACHE / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Service(name, f"http://{HOST}:{port}", process, log)


async def _answers(url: str, limit: float) -> bool:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as session,
            session.get(url) as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def wait_ready(service: Service, limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            break
        if asyncio.run(_answers(f"{service.base_url}/version", 2.0)):
            return
        time.sleep(0.3)
    tail = service.log.read_text(errors="replace")[-3000:]
    raise SystemExit(f"{service.name} did not start (log {service.log}):\n{tail}")


def stop(service: Service) -> None:
    if service.process.poll() is None:
        os.killpg(service.process.pid, signal.SIGTERM)
        try:
            service.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()


async def _login(base_url: str, password: str) -> str:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(f"{base_url}/token", data={"username": ADMIN, "password": password}) as r,
    ):
        document: dict[str, Any] = await r.json()
        if r.status != 200:
            raise SystemExit(f"login at {base_url} failed: HTTP {r.status} {document}")
        token: str = document["access_token"]
        return token


# ---------------------------------------------------------------- measuring


def measure(spec: LoadSpec, target: Target) -> LevelResult:
    """Run one level from a separate process, and account the CPU the service spent on it
    (a figure that a busy machine disturbs less than rates)."""
    assert target.service is not None
    before = cpu_seconds(target.service.process.pid)
    result = LevelResult(**asdict(run_in_subprocess(spec)))
    result.service_cpu_s = cpu_seconds(target.service.process.pid) - before
    return result


def load_spec(endpoint: str, target: Target, *, level: int, args: argparse.Namespace) -> LoadSpec:
    assert target.service is not None
    common = {"concurrency": level, "duration": args.duration, "timeout": args.timeout}
    if endpoint == "GET /user":
        return LoadSpec(
            url=f"{target.service.base_url}/user",
            method="GET",
            headers={"Authorization": f"Bearer {target.token}"},
            **common,
        )
    return LoadSpec(
        url=f"{target.service.base_url}/token",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode({"username": ADMIN, "password": target.password}),
        **common,
    )


def run_level(endpoint: str, target: Target, level: int, args: argparse.Namespace) -> LevelResult:
    """One measurement, restarting the service first if an earlier level left it dead."""
    print(f"  {endpoint} at concurrency {level}: {target.name}", file=sys.stderr, flush=True)
    restarted = False
    if not target.answers(PROBE_TIMEOUT):
        target.stop()
        target.start()
        restarted = True
    result = measure(load_spec(endpoint, target, level=level, args=args), target)
    result.restarted = restarted
    result.answers_after = target.answers(PROBE_TIMEOUT)
    return result


# ---------------------------------------------------------------- report


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "-"
    if theirs == 0:
        return "inf" if ours > 0 else "-"
    return f"{ours / theirs:.2f}x"


def _notes(result: LevelResult) -> str:
    notes = ["restarted before" if result.restarted else "", "" if result.answers_after else "DEAD"]
    return " ".join(note for note in notes if note)


def print_endpoint(endpoint: str, results: dict[tuple[str, int], LevelResult]) -> None:
    levels = sorted({level for _, level in results})
    print(f"\n{endpoint}  (cpu: CPU ms of the service process per answered request)")
    header = (
        f"{'conc':>5}  {'service':<11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ok':>7} "
        f"{'errors':>6} {'timeouts':>8} {'stall ms':>8} {'cpu':>6}  notes"
    )
    print(header)
    print("-" * len(header))
    for level in levels:
        for service in SERVICES:
            if (service, level) not in results:
                continue
            r = results[service, level]
            print(
                f"{level:>5}  {service:<11} {r.rate:>8.1f} {_cell(r.p50_ms):>8} "
                f"{_cell(r.p99_ms):>8} {r.ok:>7} {r.error_count:>6} {r.timeouts:>8} "
                f"{r.longest_gap_ms:>8.0f} {_cell(r.cpu_ms, 2):>6}  "
                f"{_notes(r)}"
            )
            if r.errors:
                print(f"{'':>19}errors: {r.errors}")
    if not all((s, level) in results for s in SERVICES for level in levels):
        return
    print("ratios (above 1: ogdc-hooks better): rate ours/ref, latency and CPU ref/ours")
    print(f"{'conc':>5}  {'req/s':>8} {'p50':>8} {'p99':>8} {'cpu':>10}")
    for level in levels:
        ours, ref = results["ogdc-hooks", level], results["reference", level]
        print(
            f"{level:>5}  {_ratio(ours.rate, ref.rate):>8} {_ratio(ref.p50_ms, ours.p50_ms):>8} "
            f"{_ratio(ref.p99_ms, ours.p99_ms):>8} "
            f"{_ratio(ref.cpu_ms, ours.cpu_ms):>10}"
        )


def print_verdict(results: dict[tuple[str, int], LevelResult]) -> None:
    """The issue's target: GET /user at 200 >= 3x the reference's best rate, clean."""
    top = max(level for _, level in results)
    ours = results.get(("ogdc-hooks", top))
    reference = {level: r for (s, level), r in results.items() if s == "reference"}
    if ours is None or not reference:
        return
    best_level = max(reference, key=lambda level: reference[level].rate)
    best = reference[best_level]
    clean = ours.error_count == 0 and ours.timeouts == 0 and ours.longest_gap_ms < 1000
    print(
        f"\nGET /user: reference best {best.rate:.1f} req/s (at concurrency {best_level}); "
        f"ogdc-hooks at {top}: {ours.rate:.1f} req/s = {_ratio(ours.rate, best.rate)}, "
        f"{ours.error_count} errors, {ours.timeouts} timeouts, "
        f"longest stall {ours.longest_gap_ms:.0f} ms"
    )
    met = best.rate > 0 and ours.rate >= 3 * best.rate and clean
    print(f"target (>= 3x, no error, no stall >= 1 s): {'met' if met else 'MISSED'}")
    print(
        f"service CPU per request: ogdc-hooks at {top} "
        f"{_cell(ours.cpu_ms, 2)} ms, reference at {best_level} "
        f"{_cell(best.cpu_ms, 2)} ms"
    )


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per level")
    parser.add_argument("--levels", default="1,10,50,200", help="concurrency levels")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (s)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="sweeps of all levels; the median round is shown"
    )
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="which to measure")
    parser.add_argument("--services", default=",".join(SERVICES), help="which to start")
    parser.add_argument("--pg-host", default=HOST)
    parser.add_argument("--pg-port", type=int, default=5432)
    args = parser.parse_args()
    args.levels = [int(level) for level in args.levels.split(",")]
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip() in ENDPOINTS]
    args.services = [s.strip() for s in args.services.split(",") if s.strip() in SERVICES]
    return args


def _median(results: list[LevelResult]) -> LevelResult:
    """The round with the median rate: one busy moment of a shared machine does not decide."""
    return sorted(results, key=lambda result: result.rate)[len(results) // 2]


def run(args: argparse.Namespace) -> None:
    pg = PgServer(args.pg_host, args.pg_port)
    password = secrets.token_urlsafe(16)
    launchers = {"ogdc-hooks": ogdc_hooks_launcher, "reference": reference_launcher}
    with scratch_databases(pg) as databases:
        targets = [
            Target(name, databases[name], launchers[name](databases[name], password, pg), password)
            for name in args.services
        ]
        try:
            for target in targets:
                target.start()
            print(
                f"{args.duration:g} s per level, per-request timeout {args.timeout:g} s, "
                f"median of {args.rounds} round(s) by rate, load from a separate aiohttp "
                f"process, PostgreSQL {pg.host}:{pg.port}, {os.cpu_count()} CPUs, "
                f"load average {os.getloadavg()[0]:.1f} at the start"
            )
            for endpoint in args.endpoints:
                rounds: dict[tuple[str, int], list[LevelResult]] = {}
                for _ in range(args.rounds):
                    for level in args.levels:
                        for target in targets:
                            result = run_level(endpoint, target, level, args)
                            rounds.setdefault((target.name, level), []).append(result)
                results = {key: _median(measured) for key, measured in rounds.items()}
                print_endpoint(endpoint, results)
                if endpoint == "GET /user":
                    print_verdict(results)
            print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
        finally:
            for target in targets:
                target.stop()


def main() -> None:
    run(parse_args())


if __name__ == "__main__":
    main()
