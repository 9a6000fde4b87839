"""Render recipes with ogdc-runner's own builders (0.3.0 or 0.4.2), without submitting anything.

Runs inside a scratch virtual environment of `refvenv.py` (see `render_bench.py`
and `regenerate_reference_renders.py`); both versions have the same entry points.
Reads a job from stdin and writes JSON to stdout:

    {"recipes": [{"name": ..., "dir": ..., "force_pvc": false}], "repeat": 1,
     "dataone": {"<dataset_identifier>|<filename pattern>": [[url, filename], ...]}}
    -> {"<name>": {"workflow": {...}, "seconds": <mean per render>} | {"error": "..."}}

`submit_workflow` and `Workflow.create` are replaced by `to_dict()`, and
DataONE resolution answers from the job's canned objects, so nothing touches
the network. `force_pvc` makes a recipe's output `pvc` (0.3.0 reads the
viz-workflow reference recipe's output as `dataone` and refuses it).
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DATAONE_NODE_URL", "https://dataone.invalid/mn")
job = json.load(sys.stdin)
canned = job.get("dataone", {})


def fake_resolve(dataset_identifier, filename=None):
    objects = canned.get(f"{dataset_identifier}|{filename}", [])
    return [{"identifier": url, "url": url, "filename": name} for url, name in objects]


from ogdc_runner.models import recipe_config  # noqa: E402

recipe_config.resolve_dataone_input = fake_resolve

import ogdc_runner.workflow.viz_workflow as viz  # noqa: E402
from hera.workflows import Workflow  # noqa: E402
from ogdc_runner.recipe import get_recipe_config  # noqa: E402
from ogdc_runner.workflow import shell  # noqa: E402

captured = {}


def no_submit(workflow, *, wait=False):
    captured["workflow"] = workflow.to_dict()
    return "not-submitted"


Workflow.create = lambda self, *args, **kwargs: self.to_dict()
shell.submit_workflow = no_submit
viz.submit_workflow = no_submit


def render(entry):
    config = get_recipe_config(Path(entry["dir"]))
    if entry.get("force_pvc"):
        config.output = recipe_config.PvcRecipeOutput()
    if config.workflow.type == "visualization":
        viz.make_and_submit_viz_workflow(config, wait=False)
    else:
        shell.make_and_submit_shell_workflow(config, wait=False)
    return captured.pop("workflow")


results = {}
for entry in job["recipes"]:
    try:
        start = time.perf_counter()
        for _ in range(job.get("repeat", 1)):
            workflow = render(entry)
        seconds = (time.perf_counter() - start) / job.get("repeat", 1)
        results[entry["name"]] = {"workflow": workflow, "seconds": seconds}
    except Exception as err:  # report any failure of the reference as data
        results[entry["name"]] = {"error": f"{type(err).__name__}: {err}"}
json.dump(results, sys.stdout)
