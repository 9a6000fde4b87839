"""Probe a URL every 50 ms with a 100 ms client timeout until stdin closes, then print
`{"probes": N, "failures": [...]}`: a liveness check that runs in a process of its own,
so that an attack the test sends (and the test's GIL) cannot slow the probes down.

    python -m tests.support.prober http://127.0.0.1:8000/healthz
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def probe(url: str) -> dict[str, object]:
    failures: list[str] = []
    probes = 0
    stdin_closed = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.1)) as session:
        while not stdin_closed.done():
            probes += 1
            try:
                async with session.get(url) as answer:
                    if answer.status != 200:
                        failures.append(f"status {answer.status}")
            except (TimeoutError, aiohttp.ClientError) as err:
                failures.append(type(err).__name__)
            await asyncio.sleep(0.05)
    return {"probes": probes, "failures": failures}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(probe(sys.argv[1]))))
