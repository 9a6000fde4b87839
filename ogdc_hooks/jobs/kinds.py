"""Every kind of background job, and the one way to ask for each (what its payload and
dedupe key are is written only here).

Delivery jobs name a stored delivery by its forge host and id; run jobs name a
run. A job asked for again while it exists is not duplicated (`queue.enqueue`).
Each job carries the key of the repository it works for (`repository_key`), read
from its run or delivery in the same transaction, so the queue can run a few
jobs of each repository at a time.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import text
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
    SUMMARY = "summary"  # the one check of a big push that lists all its recipes
    ACTION = "requested_action"  # someone pressed a button of a run's report (cancel, retry)
    STOP = "stop"  # stop the workflow of a cancelled run in the engine
    DETAILS = "details"  # read a finished run's failure details or output link from the engine
    PROPOSAL = "pull_request"  # a pull request or merge group: validate and render, never submit
    COMMAND = "command"  # a `/ogdc run` comment on a pull request


DELIVERY_KINDS = frozenset(
    {
        JobKind.PUSH,
        JobKind.RERUN,
        JobKind.HOUSEKEEPING,
        JobKind.ACTION,
        JobKind.PROPOSAL,
        JobKind.COMMAND,
    }
)


def delivery_key(forge: str, delivery_id: str) -> str:
    """The dedupe key of a delivery's job (`webhooks/store.py` writes the same in SQL)."""
    return f"delivery:{forge}:{delivery_id}"


def repository_key(forge: str, repository: str) -> str:
    """The key of a repository in `jobs.repository` (the SQL below and `webhooks/store.py`
    write the same)."""
    return f"{forge}/{repository}"


_DELIVERY_REPOSITORY = text(
    "SELECT forge || '/' || repository FROM deliveries WHERE forge = :forge AND id = :id"
)
_RUN_REPOSITORY = text("SELECT forge || '/' || repository FROM runs WHERE id = :id")


async def enqueue_delivery(
    connection: AsyncConnection, kind: JobKind, forge: str, delivery_id: str
) -> None:
    """Ask for the job of a stored delivery (e.g. a refused push handled again)."""
    assert kind in DELIVERY_KINDS
    payload = {"delivery": delivery_id, "forge": forge}
    repository = await connection.scalar(_DELIVERY_REPOSITORY, {"forge": forge, "id": delivery_id})
    await queue.enqueue(
        connection, kind, payload, key=delivery_key(forge, delivery_id), repository=repository
    )


async def _enqueue_run_job(
    connection: AsyncConnection, kind: JobKind, run_id: uuid.UUID, max_attempts: int = 8
) -> None:
    repository = await connection.scalar(_RUN_REPOSITORY, {"id": run_id})
    await queue.enqueue(
        connection,
        kind,
        {"run": str(run_id)},
        key=f"{kind}:{run_id}",
        repository=repository,
        max_attempts=max_attempts,
    )


async def enqueue_prepare(connection: AsyncConnection, run_id: uuid.UUID) -> None:
    await _enqueue_run_job(connection, JobKind.PREPARE, run_id)


async def enqueue_submit(connection: AsyncConnection, run_id: uuid.UUID) -> None:
    await _enqueue_run_job(connection, JobKind.SUBMIT, run_id)


async def enqueue_stop(connection: AsyncConnection, run_id: uuid.UUID) -> None:
    await _enqueue_run_job(connection, JobKind.STOP, run_id)


async def enqueue_report(connection: AsyncConnection, run_id: uuid.UUID) -> None:
    """Reports are retried until the forge takes them (`REPORT_ATTEMPTS`)."""
    await _enqueue_run_job(connection, JobKind.REPORT, run_id, max_attempts=REPORT_ATTEMPTS)


async def enqueue_summary(
    connection: AsyncConnection,
    forge: str,
    repository: str,
    commit_sha: str,
    installation_id: int | None,
) -> None:
    """One summary job per commit: asked for again while it waits, it is still one, and it
    keeps its place (each of a big push's reports asks for it)."""
    await queue.enqueue(
        connection,
        JobKind.SUMMARY,
        {
            "forge": forge,
            "repository": repository,
            "commit": commit_sha,
            "installation": installation_id,
        },
        key=f"summary:{forge}:{repository}:{commit_sha}",
        max_attempts=REPORT_ATTEMPTS,
        keep_place=True,
        repository=repository_key(forge, repository),
    )


# Argo outages are retried a few times; then the failure is shown without its logs.
DETAILS_ATTEMPTS = 5


async def enqueue_details(connection: AsyncConnection, run_id: uuid.UUID) -> None:
    await _enqueue_run_job(connection, JobKind.DETAILS, run_id, max_attempts=DETAILS_ATTEMPTS)


def run_id_of(job: Job) -> uuid.UUID:
    """The run a prepare, submit, stop, report or details job is for."""
    return uuid.UUID(job.payload["run"])


def delivery_of(job: Job) -> tuple[str, str]:
    """The (forge host, delivery id) a delivery job is for."""
    return job.payload["forge"], job.payload["delivery"]
