"""Rewrite tests/data/ogdc-runner-<version>/renders.json: ogdc-runner's own render of every
vendored recipe of ogdc-recipes, which the tests compare with step by step.

Run from the repository root: `python bench/regenerate_reference_renders.py` (both
versions) or with `0.3.0` or `0.4.2`. It builds the scratch environments of
`refvenv.py` when missing (PyPI is needed once); the tests never do, they read the
committed files. Each render is stored with the digest of the recipe files it was
made from, so a test notices when the vendored recipes change and the renders were
not made again. For 0.4.2 it also renders the variants of viz-workflow that
`VIZ_VARIANTS` (tests/recipes/test_render_helpers.py) defines: the serial form,
claims instead of urls, stages turned off.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from refvenv import REFERENCES, dataone_cans, ensure_reference_venv, run_reference  # noqa: E402

from tests.recipes.test_render_helpers import (  # noqa: E402
    REFERENCE_NAMES,
    VIZ_VARIANTS,
    recipe_digest,
    write_viz_variant,
)
from tests.support.data import OGDC_RECIPES, ogdc_runner_renders  # noqa: E402

# ogdc-runner 0.3.0 reads viz-workflow's output as `dataone` and refuses it; as pvc it renders.
# 0.4.2 reads it as `dataone` too, but its visualization workflow ignores the output.
FORCE_PVC = {"0.3.0": {"viz-workflow"}, "0.4.2": set[str]()}


def render_all(python: Path, version: str, dirs: dict[str, Path]) -> dict[str, Any]:
    """ogdc-runner `version`'s render of each recipe directory, with its digest."""
    job = {
        "recipes": [
            {"name": name, "dir": str(path), "force_pvc": name in FORCE_PVC[version]}
            for name, path in dirs.items()
        ],
        "dataone": dataone_cans(dirs.values()),
    }
    results = run_reference(python, job, limit=300)
    if results is None:
        sys.exit(f"ogdc-runner {version} did not finish rendering within 300 s")
    failed = {name: result["error"] for name, result in results.items() if "error" in result}
    if failed:
        sys.exit(f"ogdc-runner {version} could not render: {failed}")
    return {
        name: {"recipe_sha256": recipe_digest(path), "workflow": results[name]["workflow"]}
        for name, path in dirs.items()
    }


def regenerate(version: str) -> None:
    requirement = REFERENCES[version][1]
    python = ensure_reference_venv([requirement], version=version)
    dirs = {name: OGDC_RECIPES / "recipes" / name for name in REFERENCE_NAMES}
    renders: dict[str, Any] = {
        "generator": f"ogdc-runner=={version}",
        "forced_pvc_output": sorted(FORCE_PVC[version]),
        "recipes": render_all(python, version, dirs),
    }
    if version == "0.4.2":
        with tempfile.TemporaryDirectory() as scratch:
            variants = {
                name: write_viz_variant(OGDC_RECIPES, Path(scratch), name) for name in VIZ_VARIANTS
            }
            renders["viz_variants"] = render_all(python, version, variants)
    target = ogdc_runner_renders(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(renders, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target.relative_to(HERE.parent)} ({len(renders['recipes'])} recipes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "versions", nargs="*", metavar="VERSION", help=f"{', '.join(REFERENCES)} (default: all)"
    )
    versions = parser.parse_args().versions or list(REFERENCES)
    for unknown in sorted(set(versions) - set(REFERENCES)):
        parser.error(f"unknown version {unknown}; choose from {', '.join(REFERENCES)}")
    for version in versions:
        regenerate(version)


if __name__ == "__main__":
    main()
