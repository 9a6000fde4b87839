"""Remembering GitHub App installations and the repositories they cover."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from ogdc_hooks.db.tables import Installation, InstallationRepository
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.push import delivery_payload


def _names(repositories: Any) -> list[str]:
    return [r["full_name"] for r in repositories or () if isinstance(r, dict) and "full_name" in r]


async def handle_installation(pipeline: Pipeline, job: Job) -> None:
    payload = await delivery_payload(pipeline, job.payload["delivery"])
    installation = payload.get("installation") or {}
    installation_id = installation.get("id")
    if not isinstance(installation_id, int):
        return
    action = payload.get("action")
    added = _names(payload.get("repositories") or payload.get("repositories_added"))
    removed = _names(payload.get("repositories_removed"))
    account = str((installation.get("account") or {}).get("login") or "")
    async with pipeline.database.engine.begin() as connection:
        if action == "deleted":
            await connection.execute(delete(Installation).where(Installation.id == installation_id))
            return
        await connection.execute(
            insert(Installation)
            .values(id=installation_id, account=account, active=action != "suspend")
            .on_conflict_do_update(
                index_elements=["id"], set_={"account": account, "active": action != "suspend"}
            )
        )
        for name in added:
            await connection.execute(
                insert(InstallationRepository)
                .values(full_name=name, installation_id=installation_id)
                .on_conflict_do_update(
                    index_elements=["full_name"], set_={"installation_id": installation_id}
                )
            )
        if removed:
            await connection.execute(
                delete(InstallationRepository).where(InstallationRepository.full_name.in_(removed))
            )
