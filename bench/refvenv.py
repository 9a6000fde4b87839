"""ogdc-runner in scratch virtual environments, for the scripts that compare with it.

ogdc-runner 0.3.0 lives in `bench/.cache/refvenv` (PyPI is needed once), shared
by `render_bench.py`, `api_bench.py` and `regenerate_reference_renders.py`;
ogdc-runner 0.4.2 in `bench/.cache/refvenv-0.4.2`, for the regeneration of its
renders. Each script asks for what it needs and an environment is completed
when an import fails. `render_reference.py` runs inside either and renders
recipes with ogdc-runner's own builders.

`OGDC_RUNNER_0_4_2_REQUIREMENT` installs 0.4.2 from elsewhere than PyPI, e.g.
`ogdc-runner @ git+https://github.com/QGreenland-Net/ogdc-runner@v0.4.2` (the
tag's `dataone-auth` dependency is only for its service, which is not used here).
"""

from __future__ import annotations

import json
import os
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
# Each reference version: its scratch environment and what installs it there.
REFERENCES = {
    "0.3.0": (REFERENCE_VENV, OGDC_RUNNER),
    "0.4.2": (
        ROOT / "bench" / ".cache" / "refvenv-0.4.2",
        os.environ.get("OGDC_RUNNER_0_4_2_REQUIREMENT", "ogdc-runner==0.4.2"),
    ),
}


def ensure_reference_venv(
    requirements: Sequence[str] = (OGDC_RUNNER,),
    probe: str = "ogdc_runner",
    version: str = "0.3.0",
) -> Path:
    """The python of `version`'s environment, once `import <probe>` works there and the
    installed ogdc-runner is `version`."""
    directory = REFERENCES[version][0]
    python = directory / "bin" / "python"
    check = [
        str(python),
        "-c",
        f"import {probe}; from importlib.metadata import version; "
        f"assert version('ogdc-runner') == {version!r}",
    ]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    print(f"installing {' '.join(requirements)} into {directory} ...", flush=True)
    if not python.exists():
        venv.create(directory, with_pip=True)
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
