"""Deliveries only their forge acts on (GitHub: App installations), handed to that forge."""

from __future__ import annotations

from ogdc_hooks.forges.base import Housekeeping
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.deliveries import delivered


async def handle_housekeeping(pipeline: Pipeline, job: Job) -> None:
    forge, event = await delivered(pipeline, job)
    if forge is not None and isinstance(event, Housekeeping):
        await forge.housekeep(event, pipeline.database.engine)
