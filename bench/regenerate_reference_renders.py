"""Rewrite tests/data/ogdc-runner-0.3.0/renders.json: ogdc-runner 0.3.0's own render of
every vendored recipe of ogdc-recipes, which the tests compare with step by step.

Run from the repository root: `python bench/regenerate_reference_renders.py`. It
builds the scratch environment of `refvenv.py` when missing (PyPI is needed once);
the tests never do, they read the committed file. Each render is stored with the
digest of the recipe files it was made from, so a test notices when the vendored
recipes change and the renders were not made again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from refvenv import OGDC_RUNNER, dataone_cans, ensure_reference_venv, run_reference  # noqa: E402

from tests.recipes.test_render_helpers import REFERENCE_NAMES, recipe_digest  # noqa: E402
from tests.support.data import OGDC_RECIPES, OGDC_RUNNER_RENDERS  # noqa: E402

# ogdc-runner 0.3.0 reads viz-workflow's output as `dataone` and refuses it; as pvc it renders.
FORCE_PVC = {"viz-workflow"}


def main() -> None:
    python = ensure_reference_venv()
    dirs = {name: OGDC_RECIPES / "recipes" / name for name in REFERENCE_NAMES}
    job = {
        "recipes": [
            {"name": name, "dir": str(path), "force_pvc": name in FORCE_PVC}
            for name, path in dirs.items()
        ],
        "dataone": dataone_cans(dirs.values()),
    }
    results = run_reference(python, job, limit=300)
    if results is None:
        sys.exit("ogdc-runner did not finish rendering within 300 s")
    failed = {name: result["error"] for name, result in results.items() if "error" in result}
    if failed:
        sys.exit(f"ogdc-runner could not render: {failed}")
    renders = {
        "generator": OGDC_RUNNER,
        "forced_pvc_output": sorted(FORCE_PVC),
        "recipes": {
            name: {
                "recipe_sha256": recipe_digest(dirs[name]),
                "workflow": results[name]["workflow"],
            }
            for name in REFERENCE_NAMES
        },
    }
    OGDC_RUNNER_RENDERS.parent.mkdir(parents=True, exist_ok=True)
    OGDC_RUNNER_RENDERS.write_text(json.dumps(renders, indent=1, sort_keys=True) + "\n")
    print(
        f"wrote {OGDC_RUNNER_RENDERS.relative_to(HERE.parent)} ({len(renders['recipes'])} recipes)"
    )


if __name__ == "__main__":
    main()
