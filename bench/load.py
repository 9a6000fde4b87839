"""A closed-loop HTTP load generator shared by the benchmark scripts.

`concurrency` clients each send one request at a time until `duration` ends;
every request has its own timeout, so a server that stalls costs at most
`duration + timeout` and shows up as timeouts, not as a hang. Run it in a
separate process (`python bench/load.py < spec.json`) so the generator does not
share a CPU core's event loop with the server it measures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp


@dataclass
class LoadSpec:
    url: str
    method: str
    concurrency: int
    duration: float
    timeout: float
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    ok_statuses: tuple[int, ...] = (200,)
    fresh_header: str | None = None  # a header given a new UUID on every request


@dataclass
class LoadResult:
    ok: int = 0
    timeouts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    longest_gap_ms: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


async def generate_load(spec: LoadSpec) -> LoadResult:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    finished: list[float] = []
    errors: Counter[str] = Counter()
    timeouts = 0
    body = spec.body.encode()
    ok = set(spec.ok_statuses)
    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=spec.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = loop.time()
        deadline = start + spec.duration

        async def client() -> None:
            nonlocal timeouts
            while loop.time() < deadline:
                headers = dict(spec.headers)
                if spec.fresh_header:
                    headers[spec.fresh_header] = str(uuid.uuid4())
                sent = loop.time()
                try:
                    async with session.request(
                        spec.method, spec.url, headers=headers, data=body or None
                    ) as response:
                        await response.read()
                        status = response.status
                except TimeoutError:
                    timeouts += 1
                    continue
                except aiohttp.ClientError as err:
                    errors[type(err).__name__] += 1
                    await asyncio.sleep(0.01)  # a refused connection must not spin the loop
                    continue
                done = loop.time()
                finished.append(done)
                if status in ok:
                    latencies.append(done - sent)
                else:
                    errors[f"HTTP {status}"] += 1

        await asyncio.gather(*(client() for _ in range(spec.concurrency)))
        end = loop.time()
    marks = [start, *sorted(finished), end]
    latencies.sort()
    return LoadResult(
        ok=len(latencies),
        timeouts=timeouts,
        errors=dict(errors),
        elapsed=end - start,
        p50_ms=_ms(percentile(latencies, 0.50)),
        p99_ms=_ms(percentile(latencies, 0.99)),
        longest_gap_ms=max(b - a for a, b in itertools.pairwise(marks)) * 1000,
    )


def run_in_subprocess(spec: LoadSpec) -> LoadResult:
    """One measurement from a separate load-generator process."""
    import subprocess

    done = subprocess.run(
        [sys.executable, __file__],
        input=json.dumps(asdict(spec)),
        capture_output=True,
        text=True,
        timeout=spec.duration + spec.timeout + 60,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"load generator failed:\n{done.stderr}")
    return LoadResult(**json.loads(done.stdout))


if __name__ == "__main__":
    raw = json.loads(sys.stdin.read())
    raw["ok_statuses"] = tuple(raw.get("ok_statuses", (200,)))
    print(json.dumps(asdict(asyncio.run(generate_load(LoadSpec(**raw))))))
