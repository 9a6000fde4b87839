"""Every kind of background job, and the one way to ask for each (what its payload and
dedupe key are is written only here).

Delivery jobs name a stored delivery by its forge host and id; run jobs name a
run. A job asked for again while it exists is not duplicated (`queue.enqueue`).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncConnection

from ogdc_hooks.jobs import queue
from ogdc_hooks.jobs.queue import Job

# In effect unlimited: with the queue's backoff capped at 10 minutes this is decades of
# retrying a report the forge refuses for now; a permanent refusal still ends it at once.
REPORT_ATTEMPTS = 2**31 - 1


class JobKind(StrEnum):
    """What a job does; the value is stored in `jobs.kind`."""

    PUSH = "push"  # a delivered (or swept) push: find the changed recipes, make their runs
    RERUN = "rerequest"  # someone asked the forge to run a check again
    HOUSEKEEPING = "installation"  # a delivery only its forge acts on (the GitHub-era name)
    PREPARE = "prepare"  # clone, validate and render one run
    SUBMIT = "submit"  # hand one prepared run to the workflow engine
    REPORT = "report"  # tell the run's forge the run's current state
    PROPOSAL = "pull_request"  # a pull request or merge group: validate and render, never submit
    COMMAND = "command"  # a `/ogdc run` comment on a pull request


DELIVERY_KINDS = frozenset(
    {JobKind.PUSH, JobKind.RERUN, JobKind.HOUSEKEEPING, JobKind.PROPOSAL, JobKind.COMMAND}
)


def delivery_key(forge: str, delivery_id: str) -> str:
    """The dedupe key of a delivery's job (`webhooks/store.py` writes the same in SQL)."""
    return f"delivery:{forge}:{delivery_id}"


async def enqueue_delivery(
    connection: AsyncConnection, kind: JobKind, forge: str, delivery_id: str
) -> None:
    """Ask for the job of a stored delivery (e.g. a refused push handled again)."""
    assert kind in DELIVERY_KINDS
    payload = {"delivery": delivery_id, "forge": forge}
    await queue.enqueue(connection, kind, payload, key=delivery_key(forge, delivery_id))


async def enqueue_prepare(connection: AsyncConnection, run_id: uuid.UUID) -> None:
    await queue.enqueue(connection, JobKind.PREPARE, {"run": str(run_id)}, key=f"prepare:{run_id}")


async def enqueue_submit(connection: AsyncConnection, run_id: uuid.UUID) -> None:
    await queue.enqueue(connection, JobKind.SUBMIT, {"run": str(run_id)}, key=f"submit:{run_id}")


async def enqueue_report(connection: AsyncConnection, run_id: uuid.UUID) -> None:
    """Reports are retried until the forge takes them (`REPORT_ATTEMPTS`)."""
    await queue.enqueue(
        connection,
        JobKind.REPORT,
        {"run": str(run_id)},
        key=f"report:{run_id}",
        max_attempts=REPORT_ATTEMPTS,
    )


def run_id_of(job: Job) -> uuid.UUID:
    """The run a prepare, submit or report job is for."""
    return uuid.UUID(job.payload["run"])


def delivery_of(job: Job) -> tuple[str, str]:
    """The (forge host, delivery id) a delivery job is for."""
    return job.payload["forge"], job.payload["delivery"]
