"""Start-up of ogdc-hooks as the image runs it, beside the development install.

What a rollout waits for: from the process start to "listening" and to the
first 200 of `/readyz` (the readiness and start-up probes), on an empty
database (every migration runs) and on one already at the newest migration (a
restart, the usual case), plus the memory the ready process holds and what
one `ogdc-hooks healthcheck` (the image's HEALTHCHECK) costs. In one run it
measures:

- `source`: `python -m ogdc_hooks serve` from this checkout (the editable
  install of the development virtual environment);
- `image`: the `ogdc-hooks` entry point of a virtual environment made by
  `deploy/install.sh` (the script of the image's build stage), started from `/`
  with `PYTHONDONTWRITEBYTECODE=1`, on a read-only root with one writable
  temporary directory when this machine allows it (root and `unshare`).

It prints the median of `--rounds` starts of each and the ratio image/source,
and asserts nothing.

    python bench/startup_bench.py [--rounds 5] [--reuse]

Needs PostgreSQL at 127.0.0.1:5432 with trust authentication (else an embedded
one) and, unless `--reuse` finds one, the package index for the install.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

from tests.support.postgres import PostgresServer, start_postgres  # noqa: E402
from tests.support.readonly_root import read_only_root, why_no_read_only_root  # noqa: E402
from tests.support.service import DEFAULT_SECRETS, LISTENING, Service  # noqa: E402

IMAGE_VENV = HERE / ".cache" / "image-venv"
POLL_S = 0.005


@dataclass(frozen=True)
class Start:
    listening_s: float
    ready_s: float
    rss_mib: float
    healthcheck_s: float


def install_image_venv(reuse: bool) -> float:
    """Make the image's virtual environment; seconds it took (0 when reused)."""
    if reuse and (IMAGE_VENV / "bin" / "ogdc-hooks").exists():
        return 0.0
    subprocess.run(["rm", "-rf", str(IMAGE_VENV)], check=True)
    began = time.perf_counter()
    done = subprocess.run(
        ["sh", str(ROOT / "deploy" / "install.sh"), str(IMAGE_VENV)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"deploy/install.sh failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - began


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_start(service: Service, healthcheck: list[str]) -> Start:
    """Launch, time "listening" and the first ready answer, then measure and stop."""
    began = time.perf_counter()
    service.launch()
    assert service.process is not None
    listening = ready = 0.0
    try:
        while not ready:
            if service.process.poll() is not None:
                raise RuntimeError(f"the service exited:\n{service.log_text()}")
            if not listening and (found := LISTENING.search(service.log_text())):
                listening = time.perf_counter() - began
                service.base_url = found.group(1)
            if listening and service.is_ready():
                ready = time.perf_counter() - began
            elif time.perf_counter() - began > 120:
                raise RuntimeError(f"not ready within 120 s:\n{service.log_text()}")
            else:
                time.sleep(POLL_S)
        rss = _rss_mib(service.process.pid)
        checked = time.perf_counter()
        subprocess.run([*healthcheck, "--port", service.port], check=True, capture_output=True)
        healthcheck_s = time.perf_counter() - checked
    finally:
        service.stop()
    return Start(listening, ready, rss, healthcheck_s)


def measure(
    name: str,
    make: Callable[[dict[str, str]], Service],
    healthcheck: list[str],
    pg: PostgresServer,
    rounds: int,
) -> dict[str, list[Start]]:
    """`rounds` starts on an empty database, each followed by a restart on the migrated one."""
    results: dict[str, list[Start]] = {"empty database": [], "restart": []}
    for _ in range(rounds):
        database = pg.create_database()
        try:
            env = {**pg.env(database), **DEFAULT_SECRETS, "OGDC_LOG_FORMAT": "json"}
            results["empty database"].append(one_start(make(env), healthcheck))
            results["restart"].append(one_start(make(env), healthcheck))
        finally:
            pg.drop_database(database)
        print(f"  {name}: round done", file=sys.stderr)
    return results


def _median(starts: list[Start], field: str) -> float:
    return statistics.median(getattr(start, field) for start in starts)


def report(all_results: dict[str, dict[str, list[Start]]], rounds: int) -> None:
    fields = (
        ("listening_s", "listening s"),
        ("ready_s", "ready s"),
        ("rss_mib", "RSS MiB"),
        ("healthcheck_s", "healthcheck s"),
    )
    print(f"\nmedians of {rounds} starts each")
    header = f"{'case':16} {'install':8} " + " ".join(f"{label:>14}" for _, label in fields)
    print(header)
    print("-" * len(header))
    for case in ("empty database", "restart"):
        for install, results in all_results.items():
            cells = " ".join(f"{_median(results[case], f):14.3f}" for f, _ in fields)
            print(f"{case:16} {install:8} {cells}")
        source, image = all_results["source"][case], all_results["image"][case]
        ratios = " ".join(f"{_median(image, f) / _median(source, f):14.2f}" for f, _ in fields)
        print(f"{case:16} {'img/src':8} {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="starts of each kind (default 5)")
    parser.add_argument("--reuse", action="store_true", help="keep bench/.cache/image-venv")
    args = parser.parse_args()

    installed_in = install_image_venv(args.reuse)
    size = subprocess.run(
        ["du", "-sm", str(IMAGE_VENV)], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    why_not = why_no_read_only_root()
    scratch = Path(tempfile.mkdtemp(prefix="ogdc-startup-"))
    image_command = [str(IMAGE_VENV / "bin" / "ogdc-hooks")]
    if why_not is None:
        image_command = read_only_root(scratch, *image_command)

    def source(env: dict[str, str]) -> Service:
        return Service(env, cwd=ROOT)

    def image(env: dict[str, str]) -> Service:
        image_env = {**env, "TMPDIR": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
        return Service(image_env, command=image_command, cwd=Path("/"))

    pg = start_postgres()
    try:
        results = {
            "source": measure(
                "source",
                source,
                [sys.executable, "-m", "ogdc_hooks", "healthcheck"],
                pg,
                args.rounds,
            ),
            "image": measure(
                "image",
                image,
                [str(IMAGE_VENV / "bin" / "ogdc-hooks"), "healthcheck"],
                pg,
                args.rounds,
            ),
        }
    finally:
        if pg.keeper is not None:
            pg.keeper.cleanup()
    print(f"\nimage virtual environment: {size} MiB", end="")
    print(f", made by deploy/install.sh in {installed_in:.1f} s" if installed_in else " (reused)")
    print(
        "image starts on a read-only root with one writable directory"
        if why_not is None
        else f"image starts on the normal root (no read-only root here: {why_not})"
    )
    report(results, args.rounds)


if __name__ == "__main__":
    main()
