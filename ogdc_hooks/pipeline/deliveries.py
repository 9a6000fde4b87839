"""A delivery job's stored delivery, read back into its forge's neutral event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ogdc_hooks.db.tables import Delivery
from ogdc_hooks.forges.base import Event, Forge, Push
from ogdc_hooks.jobs.errors import PermanentError
from ogdc_hooks.jobs.kinds import delivery_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.sweep import SWEPT, swept_push


@dataclass(frozen=True)
class StoredDelivery:
    """A delivery as stored at intake, and the forge instance that sent it."""

    forge_host: str
    id: str
    event: str
    payload: dict[str, Any]
    received_at: datetime | None = None

    def event_of(self, forge: Forge | None) -> Event | None:
        """The neutral event: a swept push as the sweep wrote it, else as its forge reads it."""
        if self.payload.get(SWEPT):
            return swept_push(self.forge_host, self.payload, self.id)
        return forge.event_of(self.id, self.event, self.payload) if forge else None


async def stored_delivery(pipeline: Pipeline, forge: str, delivery_id: str) -> StoredDelivery:
    async with pipeline.database.sessions() as session:
        row = (
            await session.execute(
                select(Delivery.event, Delivery.payload, Delivery.received_at).where(
                    Delivery.forge == forge, Delivery.id == delivery_id
                )
            )
        ).first()
    if row is None:
        raise PermanentError(f"delivery {delivery_id} from {forge} is not stored")
    return StoredDelivery(forge, delivery_id, row.event, row.payload, row.received_at)


async def delivered(pipeline: Pipeline, job: Job) -> tuple[Forge | None, Event | None]:
    """The forge and neutral event of a delivery job (`{"delivery": id, "forge": host}`)."""
    stored = await stored_delivery(pipeline, *delivery_of(job))
    forge = pipeline.forges.get(stored.forge_host)
    return forge, stored.event_of(forge)


async def pushed(pipeline: Pipeline, job: Job) -> tuple[Forge | None, Push]:
    """The push a `push` job is for; `PermanentError` when the delivery is not a push."""
    forge, event = await delivered(pipeline, job)
    if not isinstance(event, Push):
        raise PermanentError(f"delivery {job.payload['delivery']} is not a push")
    return forge, event
