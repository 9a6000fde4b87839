"""ogdc-runner 0.3.0 in a scratch virtual environment, for the scripts that compare with it.

The environment lives in `bench/.cache/refvenv` (PyPI is needed once) and is
shared by `render_bench.py`, `api_bench.py` and `regenerate_reference_renders.py`;
each asks for what it needs and the environment is completed when an import fails.
`render_reference.py` runs inside it and renders recipes with ogdc-runner's own
builders.
"""

from __future__ import annotations

import json
import subprocess
import venv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_VENV = ROOT / "bench" / ".cache" / "refvenv"
REFERENCE_SCRIPT = ROOT / "bench" / "render_reference.py"
OGDC_RUNNER = "ogdc-runner==0.3.0"


def ensure_reference_venv(
    requirements: Sequence[str] = (OGDC_RUNNER,), probe: str = "ogdc_runner"
) -> Path:
    """The environment's python, once `import <probe>` works there."""
    python = REFERENCE_VENV / "bin" / "python"
    check = [str(python), "-c", f"import {probe}"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    print(f"installing {' '.join(requirements)} into {REFERENCE_VENV} ...", flush=True)
    if not python.exists():
        venv.create(REFERENCE_VENV, with_pip=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    return python


def run_reference(python: Path, job: dict[str, Any], limit: float) -> dict[str, Any] | None:
    """ogdc-runner's results for `job` (see render_reference.py), or None past `limit` seconds."""
    try:
        done = subprocess.run(
            [str(python), str(REFERENCE_SCRIPT)],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=limit,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def dataone_cans(recipe_dirs: Iterable[Path]) -> dict[str, list[tuple[str, str]]]:
    """The canned DataONE answers (the tests' own) for every dataone param of the recipes."""
    from tests.recipes.test_render_helpers import canned_objects

    cans = {}
    for directory in recipe_dirs:
        meta = yaml.safe_load((directory / "meta.yml").read_text())
        for param in meta["input"]["params"]:
            if param.get("type") == "dataone":
                key = f"{param['dataset_identifier']}|{param.get('filename')}"
                cans[key] = canned_objects(param["dataset_identifier"], param.get("filename"))
    return cans
