"""Everything a pipeline job handler needs, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from ogdc_hooks.auth.users import UserStore
from ogdc_hooks.checkout import GitToken
from ogdc_hooks.db.engine import Database
from ogdc_hooks.forges.base import Forges, RepoRef
from ogdc_hooks.metrics import Metrics
from ogdc_hooks.pipeline.offload import RecipeWorkers
from ogdc_hooks.pipeline.ports import WorkflowEngine
from ogdc_hooks.recipes.render import RenderSettings
from ogdc_hooks.recipes.validate import LoadPolicy
from ogdc_hooks.refs import resolve_ref
from ogdc_hooks.settings import Settings


@dataclass(frozen=True)
class Limits:
    """Bounds on what one clone, ref lookup and push may cost (README "Limits")."""

    clone_timeout_s: float = Settings.git_timeout_seconds
    clone_max_bytes: int = Settings.clone_max_bytes
    clone_max_files: int = Settings.clone_max_files
    git_max_memory: int = Settings.git_max_memory_bytes
    lookup_timeout_s: float = Settings.git_lookup_timeout_seconds
    max_refs: int = Settings.git_max_refs
    max_recipes_per_push: int = Settings.max_recipes_per_push

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            clone_timeout_s=settings.git_timeout_seconds,
            clone_max_bytes=settings.clone_max_bytes,
            clone_max_files=settings.clone_max_files,
            git_max_memory=settings.git_max_memory_bytes,
            lookup_timeout_s=settings.git_lookup_timeout_seconds,
            max_refs=settings.git_max_refs,
            max_recipes_per_push=settings.max_recipes_per_push,
        )


@dataclass(frozen=True)
class Pipeline:
    settings: Settings
    database: Database
    session: aiohttp.ClientSession
    users: UserStore
    workflows: WorkflowEngine | None  # None: no Argo Server configured, dry runs only
    forges: Forges  # where deliveries come from and reports go, by host
    render_settings: RenderSettings
    load_policy: LoadPolicy
    workdir: Path  # where checkouts are made (each in its own temporary directory)
    metrics: Metrics
    limits: Limits = Limits()
    recipe_workers: RecipeWorkers = field(default_factory=RecipeWorkers)

    async def resolve_ref(self, clone_url: str, ref: str, token: GitToken | None) -> str | None:
        """The commit `ref` names at `clone_url`, within this process's lookup limits."""
        return await resolve_ref(
            self.session,
            clone_url,
            ref,
            token.secret if token else None,
            token_user=token.user if token else None,
            timeout_s=self.limits.lookup_timeout_s,
            max_refs=self.limits.max_refs,
        )

    async def git_token(self, repo: RepoRef) -> GitToken | None:
        """The credential to clone `repo` with from its forge; None: anonymously (a plain URL,
        a forge not configured, or one without credentials)."""
        forge = self.forges.get(repo.forge)
        if forge is None or "://" in repo.name:
            return None
        secret = await forge.clone_token(repo)
        return GitToken(forge.clone_user(), secret) if secret else None


PIPELINE = web.AppKey("pipeline", Pipeline)  # set by the pipeline's background context
