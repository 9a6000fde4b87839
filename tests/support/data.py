"""Where the vendored test data lives (`tests/data/`, see its README for sources and licences)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
ARGO_SCHEMA = DATA / "argo-workflows-v4.1.2" / "workflow.schema.json"
OGDC_RECIPES = DATA / "ogdc-recipes"
OGDC_RUNNER_RENDERS = DATA / "ogdc-runner-0.3.0" / "renders.json"
