"""Benchmark: rendering recipes into Argo Workflows, ogdc-hooks beside ogdc-runner 0.3.0.

In one run, prints:

1. recipes per second rendering the reference recipes (load + resolve from canned
   DataONE answers + render), for ogdc-hooks in this process and for ogdc-runner
   0.3.0's own builders in a scratch virtual environment (`bench/.cache/refvenv`,
   created with `pip install ogdc-runner==0.3.0` when missing), and the ratio;
2. the size (bytes of JSON) and render time of the parallel workflow for 10, 100,
   300 and 10,000 url inputs (partition size 1, three commands), for both. Each
   reference render runs in its own subprocess, killed after a time limit, and the
   ones that did not finish are reported as such.

It prints figures and asserts nothing. Run from the repository root:
`python bench/render_bench.py [--repeat N] [--limit SECONDS]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ogdc_hooks.recipes.load import load_recipe  # noqa: E402
from ogdc_hooks.recipes.model import InputFile, Recipe  # noqa: E402
from ogdc_hooks.recipes.render import RenderSettings, RunIdentity, render_workflow  # noqa: E402
from tests.recipes.test_render_helpers import (  # noqa: E402
    REFERENCE_NAMES,
    load_reference,
    resolved_inputs,
)
from tests.support.data import OGDC_RECIPES as REFERENCE  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from refvenv import dataone_cans, ensure_reference_venv, run_reference  # noqa: E402

SIZES = (10, 100, 300, 10_000)
COMMANDS = (
    "gdalinfo $INPUT_FILE > $OUTPUT_FILE.txt",
    "gdal_translate -of COG $INPUT_FILE $OUTPUT_FILE",
    "gdaladdo -r average $OUTPUT_FILE 2 4 8",
)
SETTINGS = RenderSettings()
RUN = RunIdentity(run_id="0" * 32, recipe_path="recipes/bench")


def ours_per_recipe(repeat: int) -> float:
    """Mean seconds to load, resolve (canned) and render one reference recipe."""
    start = time.perf_counter()
    for _ in range(repeat):
        for name in REFERENCE_NAMES:
            recipe = load_reference(REFERENCE, name)
            render_workflow(recipe, resolved_inputs(recipe), SETTINGS, RUN)
    return (time.perf_counter() - start) / (repeat * len(REFERENCE_NAMES))


def reference_recipes(python: Path, repeat: int, limit: float) -> None:
    print("== reference recipes (load + resolve + render) ==")
    dirs = [REFERENCE / "recipes" / name for name in REFERENCE_NAMES]
    ours = ours_per_recipe(repeat)
    job = {
        "recipes": [
            {"name": name, "dir": str(path), "force_pvc": name == "viz-workflow"}
            for name, path in zip(REFERENCE_NAMES, dirs, strict=True)
        ],
        "repeat": repeat,
        "dataone": dataone_cans(dirs),
    }
    theirs = run_reference(python, job, limit)
    print(f"ogdc-hooks : {1 / ours:10.1f} recipes/s  ({ours * 1000:.2f} ms each, {repeat} rounds)")
    if theirs is None:
        print(f"ogdc-runner: did not finish in {limit:.0f} s")
        return
    failed = {name: r["error"] for name, r in theirs.items() if "error" in r}
    times = [r["seconds"] for r in theirs.values() if "seconds" in r]
    mean = statistics.fmean(times)
    print(f"ogdc-runner: {1 / mean:10.1f} recipes/s  ({mean * 1000:.2f} ms each, {repeat} rounds)")
    print(f"ratio      : ogdc-hooks is {mean / ours:.1f}x the reference's rate")
    print("note       : viz-workflow's dataone output made pvc on both sides (both refuse it)")
    for name, error in failed.items():
        print(f"ogdc-runner failed on {name}: {error}")


def parallel_recipe_dir(base: Path, count: int) -> Path:
    directory = base / f"parallel-{count}"
    directory.mkdir()
    meta = {
        "name": f"Parallel bench {count}",
        "workflow": {"type": "shell", "parallel": {"enabled": True, "partition_size": 1}},
        "input": {"params": [{"type": "url", "value": url_of(i)} for i in range(count)]},
        "output": {"type": "pvc"},
    }
    (directory / "meta.yml").write_text(yaml.safe_dump(meta))
    (directory / "recipe.sh").write_text("\n".join(COMMANDS) + "\n")
    return directory


def url_of(index: int) -> str:
    return f"https://noaadata.apps.nsidc.org/NOAA/G02135/north/daily/geotiff/N_{index:06d}.tif"


def ours_parallel(directory: Path) -> tuple[int, float]:
    recipe: Recipe = load_recipe(directory.parent, directory.name)
    inputs = [InputFile(p.value, p.value.rsplit("/", 1)[-1]) for p in recipe.meta.input.params]
    start = time.perf_counter()
    manifest = render_workflow(recipe, inputs, SETTINGS, RUN)
    seconds = time.perf_counter() - start
    return len(json.dumps(manifest)), seconds


def parallel_sizes(python: Path, limit: float) -> None:
    print("\n== parallel workflow, partition size 1, three commands (render only) ==")
    print(
        f"{'inputs':>7} | {'ogdc-hooks bytes':>16} {'ms':>8} | {'ogdc-runner bytes':>17} {'ms':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        for count in SIZES:
            directory = parallel_recipe_dir(Path(tmp), count)
            size, seconds = ours_parallel(directory)
            job = {"recipes": [{"name": "p", "dir": str(directory)}]}
            started = time.perf_counter()
            theirs = run_reference(python, job, limit)
            if theirs is None:
                reference = f"{'did not finish in':>17} {limit:.0f} s"
                reference += f" (killed after {time.perf_counter() - started:.0f} s)"
            elif "error" in theirs["p"]:
                reference = f"failed: {theirs['p']['error'][:60]}"
            else:
                their_size = len(json.dumps(theirs["p"]["workflow"]))
                reference = f"{their_size:17d} {theirs['p']['seconds'] * 1000:9.1f}"
            print(f"{count:7d} | {size:16d} {seconds * 1000:8.1f} | {reference}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="rounds over the reference recipes")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per reference render")
    args = parser.parse_args()
    python = ensure_reference_venv()
    reference_recipes(python, args.repeat, args.limit)
    parallel_sizes(python, args.limit)


if __name__ == "__main__":
    main()
