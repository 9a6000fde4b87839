"""Where the vendored test data lives (`tests/data/`, see its README for sources and licences)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
ARGO_SCHEMA = DATA / "argo-workflows-v4.1.2" / "workflow.schema.json"
OGDC_RECIPES = DATA / "ogdc-recipes"


def ogdc_runner_renders(version: str) -> Path:
    """The committed renders of ogdc-runner `version` (0.3.0 or 0.4.2) of the recipes above."""
    return DATA / f"ogdc-runner-{version}" / "renders.json"
