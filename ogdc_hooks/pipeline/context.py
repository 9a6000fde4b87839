"""Everything a pipeline job handler needs, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from ogdc_hooks.auth.users import UserStore
from ogdc_hooks.db.engine import Database
from ogdc_hooks.metrics import Metrics
from ogdc_hooks.pipeline.ports import Forge, WorkflowEngine
from ogdc_hooks.recipes.render import RenderSettings
from ogdc_hooks.recipes.validate import LoadPolicy
from ogdc_hooks.settings import Settings


@dataclass(frozen=True)
class Limits:
    """Bounds on what one clone may cost."""

    clone_timeout_s: float = 120.0
    clone_max_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class Pipeline:
    settings: Settings
    database: Database
    session: aiohttp.ClientSession
    users: UserStore
    workflows: WorkflowEngine | None  # None: no Argo Server configured, dry runs only
    forge: Forge | None  # None: nowhere to report, runs are only recorded
    render_settings: RenderSettings
    load_policy: LoadPolicy
    workdir: Path  # where checkouts are made (each in its own temporary directory)
    metrics: Metrics
    limits: Limits = Limits()


PIPELINE = web.AppKey("pipeline", Pipeline)  # set by the pipeline's background context
