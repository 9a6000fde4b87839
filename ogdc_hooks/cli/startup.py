"""The block `serve` prints when it starts: what this service will and will not do.

A new user learns from it that workflows are only rendered (no Argo Server),
that webhooks answer 503 (no secret) or that nothing reaches GitHub, before
wondering why. One block in text mode, one JSON object (shaped like the log
lines) in JSON mode; on stderr, with the logs. The generated admin password
is in it on the first start only, deliberately outside the redacting logger.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from ogdc_hooks import __version__
from ogdc_hooks.settings import Settings


def summary(settings: Settings, generated_admin_password: str | None) -> dict[str, str]:
    """The facts, in the order they are shown."""
    root = settings.api_root_path.rstrip("/")
    webhook = f"{root}/webhooks/github"
    facts = {
        "version": __version__,
        "database": (
            f"embedded PostgreSQL in {settings.data_dir / 'pgdata'} (stops with serve)"
            if settings.embedded_db
            else f"PostgreSQL at {settings.db_host}:{settings.db_port}/{settings.db_name}"
        ),
        "argo": (
            "dry run: ARGO_WORKFLOWS_SERVICE_URL is not set, so workflows are rendered and "
            "stored, never submitted"
            if settings.dry_run
            else f"{settings.argo_workflows_service_url} (namespace {settings.argo_namespace})"
        ),
        "webhooks": (
            f"on at {webhook}"
            if settings.github_webhook_secret is not None
            else f"off: GITHUB_WEBHOOK_SECRET is not set, so {webhook} answers 503"
        ),
        "reporting": _reporting(settings),
        **_forgejo(settings, f"{root}/webhooks/forgejo"),
        "workers": (
            f"{settings.worker_slots} slot(s)"
            if settings.worker_slots
            else "none (OGDC_WORKER_SLOTS=0): this replica only takes requests"
        ),
    }
    if generated_admin_password is not None:
        facts["admin_password"] = (
            f"{generated_admin_password} (generated; shown only now, kept in "
            f"{settings.data_dir / 'secrets.json'})"
        )
    return facts


def _reporting(settings: Settings) -> str:
    if settings.github_app_mode:
        return f"GitHub App {settings.github_app_id}: a check run per recipe"
    if settings.github_token is not None:
        return "GITHUB_TOKEN: a commit status per recipe"
    return "none: neither a GitHub App nor GITHUB_TOKEN is set, so commits show nothing"


def _forgejo(settings: Settings, route: str) -> dict[str, str]:
    """Only when Forgejo or Gitea instances are configured: where, and which report."""
    if not settings.forgejo_instances:
        return {}
    hosts = ", ".join(
        f"{i.host} ({'statuses' if i.token else 'no FORGEJO_TOKEN: nothing reported'})"
        for i in settings.forgejo_instances
    )
    return {"forgejo": f"on at {route} for {hosts}"}


def print_summary(facts: dict[str, str], log_format: str, out: TextIO = sys.stderr) -> None:
    if log_format == "json":
        document = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": "INFO",
            "logger": "ogdc_hooks.server",
            "message": "starting",
            **facts,
        }
        print(json.dumps(document), file=out, flush=True)
        return
    width = max(len(key) for key in facts)
    lines = [f"  {key.replace('_', ' '):<{width}}  {value}" for key, value in facts.items()]
    print("\n".join(["ogdc-hooks is starting:", *lines]), file=out, flush=True)
