"""Which forges this process serves, from its settings: the wiring of `forges/<kind>/`.

Adding a forge adds its intake to `intakes` (and a `webhook_route` in
`api/webhooks.py`) and its instances to `configured_forges`; nothing else in the
core names it.
"""

from __future__ import annotations

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from ogdc_hooks.forges.base import Forge, Forges, Intake
from ogdc_hooks.forges.forgejo.forge import ForgejoForge
from ogdc_hooks.forges.forgejo.webhooks import ForgejoIntake
from ogdc_hooks.forges.github.forge import GitHubForge
from ogdc_hooks.forges.github.reporter import make_reporter
from ogdc_hooks.forges.github.transport import Record
from ogdc_hooks.forges.github.webhooks import GitHubIntake
from ogdc_hooks.forges.write_budget import WriteBudget
from ogdc_hooks.settings import Settings


def intakes(settings: Settings) -> dict[str, Intake]:
    """Each webhook route's intake, by the forge kind in its path (`/webhooks/<kind>`)."""
    return {
        "github": GitHubIntake(settings),
        "forgejo": ForgejoIntake(settings.forgejo_instances),
    }


def github_write_budget(settings: Settings, engine: AsyncEngine) -> WriteBudget:
    """GitHub's secondary limits on content-creating requests, per installation (or token),
    as OGDC_GITHUB_WRITES_PER_MINUTE and OGDC_GITHUB_WRITES_PER_HOUR set them."""
    return WriteBudget(
        engine,
        ((settings.github_writes_per_minute, 60.0), (settings.github_writes_per_hour, 3600.0)),
    )


def configured_forges(
    settings: Settings,
    session: aiohttp.ClientSession,
    *,
    github_record: Record,
    engine: AsyncEngine | None = None,
) -> Forges:
    """The forge instances deliveries may come from (raises `SettingsError`); with `engine`,
    GitHub's writes are paced (`github_write_budget`)."""
    budget = github_write_budget(settings, engine) if engine is not None else None
    reporter = make_reporter(settings, session, record=github_record, budget=budget)
    found: list[Forge] = [
        GitHubForge(reporter, settings),
        *(ForgejoForge(instance, session) for instance in settings.forgejo_instances),
    ]
    return Forges(found)
