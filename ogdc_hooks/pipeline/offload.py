"""Recipe work (YAML parsing, validation, rendering) in worker processes of its own.

It is CPU-bound Python: in a thread it would hold the interpreter lock the event
loop needs, and a hostile recipe (100,000 keys, 200,000 commands) would keep
`/healthz` from answering. In a process it only takes its share of the CPU.
The workers run at a lower CPU priority, so that the service answers first when
the CPU is short. The pool is started on first use (spawned: no copy of this
process's threads, sockets or database connections) and shut down with the
pipeline.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WORKERS = 2
NICENESS = 10


class RecipeWorkers:
    def __init__(self, workers: int = WORKERS) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, work: Callable[..., T], *args: object) -> T:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=os.nice,  # below the event loop's process for the CPU
                initargs=(NICENESS,),
            )
        # Submitting may start a worker process: done in a thread, not on the loop.
        future = await asyncio.to_thread(self._pool.submit, work, *args)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        """Stop at once: work in progress is abandoned (its job is retried), so the workers
        are terminated rather than waited for (Python 3.11 has no public way to)."""
        if self._pool is None:
            return
        workers = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        self._pool = None
