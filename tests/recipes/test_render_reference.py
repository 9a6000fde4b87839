"""Every recipe of ogdc-recipes renders into the workflow ogdc-runner builds, step by step,
except where docs/recipes.md lists an intended difference (tested in test_render_fixes.py).

The expectations are written out here, and ogdc-runner's own renders of the same recipes
(tests/data/ogdc-runner-<version>/renders.json) are compared too:

* shell recipes with both 0.3.0 and 0.4.2: our shell workflows did not change with 0.4.2,
  and 0.4.2 renders these sequential recipes as 0.3.0 did plus the workflow's
  `retryStrategy`; 0.3.0 keeps guarding what was compared before, 0.4.2 adds the retries;
* the visualization recipe with 0.4.2 only: its format changed (`parallel`, the
  pdgworkflow stages, no `batch_size`), so 0.3.0's batching/tiling render is only kept
  for the record (its digest is still checked); with 0.4.2 also its variants
  (`VIZ_VARIANTS`: serial, from a claim, stages turned off), rendered by 0.4.2 too.

viz-workflow's output is dataone (`dataone_id` without `type`), whose submission is
refused; it is rendered with pvc output (`renderable`), which 0.4.2's visualization
workflow in effect has: it ignores the output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ogdc_hooks.recipes.load import load_recipe
from ogdc_hooks.recipes.model import Recipe
from ogdc_hooks.recipes.render import UnsupportedOutput
from tests.recipes.test_render_helpers import (
    REFERENCE_NAMES,
    VIZ_VARIANTS,
    k8s_expand,
    load_reference,
    recipe_digest,
    render,
    resolved_inputs,
    shell_script,
    templates,
    write_viz_variant,
)
from tests.support.data import ogdc_runner_renders

SHELL_NAMES = [name for name in REFERENCE_NAMES if name != "viz-workflow"]
IMAGE = "ghcr.io/qgreenland-net/ogdc-runner:latest"


def ogdc_runner_commands(recipe_dir: Path) -> list[str]:
    """How ogdc-runner 0.3.0 reads recipe.sh (same result as ours on these files)."""
    lines = (recipe_dir / "recipe.sh").read_text().split("\n")
    return [line for line in lines if line and not line.startswith("#")]


def load(reference_repo: Path, name: str) -> Recipe:
    return load_reference(reference_repo, name)


def steps_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    [main] = [t for t in manifest["spec"]["templates"] if t["name"] == "main"]
    groups = main["steps"]
    assert all(len(group) == 1 for group in groups)
    return [group[0] for group in groups]


def common_expectations(manifest: dict[str, Any], recipe: Recipe, kind: str, ttl: int) -> None:
    assert manifest["apiVersion"] == "argoproj.io/v1alpha1"
    assert manifest["kind"] == "Workflow"
    metadata, spec = manifest["metadata"], manifest["spec"]
    assert metadata["generateName"] == f"{recipe.id}-{kind}-"
    assert metadata["namespace"] == "qgnet"
    assert metadata["labels"]["ogdc/persist-workflow-in-archive"] == "true"
    assert spec["serviceAccountName"] == "argo-workflow"
    assert spec["entrypoint"] == "main"
    assert spec["retryStrategy"] == {"limit": "3", "retryPolicy": "OnTransientError"}
    assert spec["ttlStrategy"] == {"secondsAfterSuccess": ttl}
    assert spec["artifactGC"] == {
        "strategy": "OnWorkflowDeletion",
        "serviceAccountName": "argo-workflow",
    }
    assert spec["volumes"] == [
        {
            "name": "workflow-volume",
            "persistentVolumeClaim": {"claimName": "cephfs-qgnet-ogdc-workflow-pvc"},
        }
    ]


@pytest.mark.parametrize("name", SHELL_NAMES)
def test_shell_reference_recipe_step_by_step(reference_repo: Path, name: str) -> None:
    recipe = load(reference_repo, name)
    commands = ogdc_runner_commands(reference_repo / "recipes" / name)
    assert list(recipe.commands) == commands
    manifest = render(recipe)
    # all shell reference recipes publish `temporary` output: kept 7 days
    common_expectations(manifest, recipe, "shell", 604800)
    assert "parallelism" not in manifest["spec"]
    by_name = templates(manifest)

    steps = steps_of(manifest)
    assert [step["name"] for step in steps] == [
        "fetch",
        *(f"step-{i}" for i in range(len(commands))),
        "publish-data",
    ]
    fetch = by_name[steps[0]["template"]]
    wgets = [f"wget --content-disposition -P /output_dir/ {f.url}" for f in resolved_inputs(recipe)]
    assert shell_script(fetch) == "mkdir -p /output_dir/ && " + " && ".join(wgets)
    assert fetch["outputs"] == {"artifacts": [{"name": "output-dir", "path": "/output_dir/"}]}
    assert "inputs" not in fetch

    previous = steps[0]["name"]
    for index, (step, command) in enumerate(zip(steps[1:-1], commands, strict=True)):
        template = by_name[step["template"]]
        assert step["template"] == f"run-cmd-{index}"
        assert template["container"]["image"] == IMAGE
        assert template["container"]["imagePullPolicy"] == "IfNotPresent"
        assert shell_script(template) == f"mkdir -p /output_dir/ && {command}"
        assert template["inputs"] == {"artifacts": [{"name": "input-dir", "path": "/input_dir/"}]}
        assert template["outputs"] == {
            "artifacts": [{"name": "output-dir", "path": "/output_dir/"}]
        }
        assert step["arguments"] == {
            "artifacts": [
                {
                    "name": "input-dir",
                    "from": f"{{{{steps.{previous}.outputs.artifacts.output-dir}}}}",
                }
            ]
        }
        previous = step["name"]

    publish_step = steps[-1]
    publish = by_name[publish_step["template"]]
    zip_path = f"/output_dir/{recipe.id}.zip"
    assert shell_script(publish) == (
        f"mkdir -p /output_dir/ && cd /input_dir/ && zip -r {zip_path} ./*"
    )
    assert publish["inputs"] == {"artifacts": [{"name": "input-dir", "path": "/input_dir/"}]}
    assert publish["outputs"] == {
        "artifacts": [{"name": "published_zip", "path": zip_path, "archive": {"none": {}}}]
    }
    assert publish_step["arguments"]["artifacts"][0]["from"] == (
        f"{{{{steps.{previous}.outputs.artifacts.output-dir}}}}"
    )


VIZ_IMAGE = "ghcr.io/permafrostdiscoverygateway/pdgworkflow:latest"
# The pdgworkflow steps of viz-workflow's parallel DAG (config.json: z_range [0, 5]) and
# the stage whose partition manifests each reads; discovery steps read none.
VIZ_STEPS = [
    ("stage-files", "stage-files", "stage-files"),
    ("discover-staged-tiles", "discover-staged-tiles", None),
    ("rasterize-max-z", "rasterize-max-z", "staged-tiles"),
    ("create-3dtiles", "create-3dtiles", "staged-tiles"),
    *(
        step
        for z in (4, 3, 2, 1, 0)
        for step in (
            (f"discover-parents-z-{z}", "discover-parent-tiles", None),
            (f"create-composites-z-{z}", "create-composite-z", f"parent-tiles-z-{z}"),
        )
    ),
    ("discover-all-geotiffs", "discover-all-geotiffs", None),
    ("create-web-tiles", "create-web-tiles", "geotiffs"),
]


def test_visualization_reference_recipe_step_by_step(reference_repo: Path) -> None:
    recipe = load(reference_repo, "viz-workflow")
    manifest = render(recipe)
    common_expectations(manifest, recipe, "visualization", 86400)
    metadata, spec = manifest["metadata"], manifest["spec"]
    assert metadata["labels"]["workflows.argoproj.io/archive-strategy"] == "false"
    assert "Parallel Viz Workflow" in metadata["annotations"]["workflows.argoproj.io/description"]
    assert spec["parallelism"] == 5  # no max_parallelism: OGDC_MAX_PARALLEL_LIMIT
    by_name = templates(manifest)
    [main] = [t for t in spec["templates"] if t["name"] == "main"]
    tasks = {task["name"]: task for task in main["dag"]["tasks"]}
    assert [(n, t["template"]) for n, t in tasks.items()] == [
        ("check-output", "check-output"),
        ("setup-config", "stage-viz-config"),
        ("fetch", "fetch"),
        *((name, template) for name, template, _ in VIZ_STEPS),
    ]
    workdir = f"/mnt/workflow/{recipe.id}"
    stage = by_name["stage-viz-config"]
    assert stage["container"]["image"] == IMAGE
    script = shell_script(stage)
    for directory in ("input", "output/staged", "output/raster/geotiff", "output/3dtiles"):
        assert f"mkdir -p {workdir}/{directory} && " in script
    assert script.endswith(f"> {workdir}/config.json")
    fetch = by_name["fetch"]
    assert fetch["script"]["image"] == IMAGE
    assert "partition-manifests" in fetch["script"]["source"]
    # one url, partitions of 10 files: one partition, known now
    assert tasks["stage-files"]["withSequence"] == {"count": "1"}
    for name, template, reads in VIZ_STEPS:
        body = by_name[template]["script"]
        assert (body["image"], body["command"]) == (VIZ_IMAGE, ["python"])
        assert body["volumeMounts"] == [{"name": "workflow-volume", "mountPath": "/mnt/workflow"}]
        assert "from pdgworkflow import WorkflowManager" in body["source"]
        parameters = tasks[name].get("arguments", {}).get("parameters", [])
        if reads is None:
            assert "withParam" not in tasks[name]
            continue
        path = f"{workdir}/partition-manifests/{reads}/partition-{{{{item}}}}.json"
        assert {"name": "manifest", "value": path} in parameters
    assert tasks["rasterize-max-z"]["withParam"] == "{{tasks.discover-staged-tiles.outputs.result}}"
    assert tasks["discover-parents-z-4"]["depends"] == "rasterize-max-z"
    assert tasks["discover-parents-z-3"]["arguments"]["parameters"] == [
        {"name": "z-level", "value": "3"}
    ]
    assert tasks["discover-all-geotiffs"]["depends"] == "create-composites-z-0"
    assert by_name["stage-files"]["script"]["resources"] == {
        "requests": {"cpu": "500m", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "6Gi"},
    }


def test_visualization_reference_recipe_as_vendored_is_refused_at_submission(
    reference_repo: Path,
) -> None:
    """viz-workflow's output is dataone: a warning on its line, and a clear refusal."""
    recipe = load_recipe(reference_repo, "recipes/viz-workflow")
    assert recipe.meta.output.type == "dataone"
    [warning] = recipe.warnings
    assert (warning.key_path, warning.severity) == ("output.dataone_id", "warning")
    assert "dataone output is not supported yet" in warning.message
    with pytest.raises(UnsupportedOutput, match="dataone output is not supported yet"):
        render(recipe)


def committed(version: str) -> dict[str, Any]:
    """ogdc-runner `version`'s own rendering of every reference recipe, committed in tests/data."""
    renders: dict[str, Any] = json.loads(ogdc_runner_renders(version).read_text())
    return renders


@pytest.mark.parametrize("version", ["0.3.0", "0.4.2"])
def test_committed_renders_were_made_from_the_vendored_recipes(
    reference_repo: Path, version: str
) -> None:
    """A changed recipe without a new render (bench/regenerate_reference_renders.py) fails here."""
    renders = committed(version)
    assert renders["generator"] == f"ogdc-runner=={version}"
    made_from = {name: entry["recipe_sha256"] for name, entry in renders["recipes"].items()}
    assert made_from == {
        name: recipe_digest(reference_repo / "recipes" / name) for name in REFERENCE_NAMES
    }


def _main(manifest: dict[str, Any]) -> dict[str, Any]:
    [main] = [t for t in manifest["spec"]["templates"] if t["name"] == "main"]
    return main


def _body(template: dict[str, Any]) -> dict[str, Any]:
    """What runs and on what: image, command, arguments as received, mounts, resources."""
    body = template.get("container") or template["script"]
    return {
        "image": body["image"],
        "command": body["command"],
        "args": [k8s_expand(arg) for arg in body.get("args", [])],
        "mounts": body.get("volumeMounts"),
        "resources": body.get("resources"),
    }


def _shell_steps(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    """The templates of a sequential shell workflow in step order (the guard left out),
    with ogdc-runner's step names made ours (docs/recipes.md, "Step names")."""
    by_name = templates(manifest)
    order = [group[0]["template"] for group in _main(manifest)["steps"]]
    seen = []
    for name in order:
        if name in ("check-output", "clear-output"):
            continue
        template = by_name[name]
        ours = "fetch" if name.endswith("-fetch-template-") else name
        ours = "publish-data" if ours == "publish-data-" else ours
        inputs = template.get("inputs", {}).get("artifacts")
        outputs = template.get("outputs", {}).get("artifacts")
        seen.append((ours, {**_body(template), "inputs": inputs, "outputs": outputs}))
    return seen


def _common_spec(ours: dict[str, Any], theirs: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        assert ours["spec"].get(key) == theirs["spec"].get(key), key
    assert ours["metadata"]["generateName"] == theirs["metadata"]["generateName"]
    for label, value in theirs["metadata"]["labels"].items():
        assert ours["metadata"]["labels"][label] == value
    for annotation, value in theirs["metadata"].get("annotations", {}).items():
        assert ours["metadata"]["annotations"][annotation] == value


_SPEC_KEYS = ("ttlStrategy", "artifactGC", "serviceAccountName", "volumes", "entrypoint")


@pytest.mark.parametrize("version", ["0.3.0", "0.4.2"])
@pytest.mark.parametrize("name", SHELL_NAMES)
def test_shell_agrees_with_ogdc_runner(reference_repo: Path, name: str, version: str) -> None:
    theirs = committed(version)["recipes"][name]["workflow"]
    ours = render(load(reference_repo, name))
    assert _shell_steps(ours) == _shell_steps(theirs)
    _common_spec(ours, theirs, _SPEC_KEYS)
    if version == "0.4.2":
        # 0.4.2 writes the limit as a number; Argo's schema wants a string (the same to Argo)
        retry = theirs["spec"]["retryStrategy"]
        assert ours["spec"]["retryStrategy"] == {**retry, "limit": str(retry["limit"])}


# Our names for 0.4.2's visualization steps and manifests (docs/recipes.md, "Names").
_VIZ_NAMES = {"write-stage-partition-manifests": "fetch", "list-pvc-files": "list-inputs"}
_VIZ_STAGES = {"/partition-manifests/pvc-inputs/": "/partition-manifests/stage-files/"}
_GUARDS = ("check-output", "clear-output")


# The one manifest of every input file of the serial form: ours at a fixed path, theirs
# where the listing step says.
_ALL_FILES = ("/stage-files/partition-0.json", "outputs.parameters.files-manifest-path}}")


def _comparable(value: str) -> str:
    """A parameter value with 0.4.2's manifest names made ours."""
    for theirs, ours in _VIZ_STAGES.items():
        value = value.replace(theirs, ours)
    return "every listed file" if value.endswith(_ALL_FILES) else value


def _viz_steps(manifest: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each DAG task in order: name, template, what it waits for, whether it fans out and
    over which manifests, its zoom level, and what runs. Our output guard is left out,
    and the planning step (ours fetches and writes manifests; theirs only writes them)
    is compared by name, dependencies and image."""
    by_name = templates(manifest)
    steps = []
    for task in _main(manifest)["dag"]["tasks"]:
        if task["name"] in _GUARDS:
            continue
        name = _VIZ_NAMES.get(task["name"], task["name"])
        after = sorted(
            _VIZ_NAMES.get(dep, dep)
            for dep in (task.get("depends") or "").split(" && ")
            if dep and dep not in _GUARDS
        )
        parameters = {
            p["name"]: _comparable(p["value"].replace("{{item.partition_id}}", "{{item}}"))
            for p in task.get("arguments", {}).get("parameters", [])
        }
        manifests = [
            v for k, v in parameters.items() if k.endswith("manifest-path") or k == "manifest"
        ]
        body = _body(by_name[task["template"]])
        # the same directories, config and scripts' work, said in our own words
        planning = name in ("fetch", "list-inputs")
        body = {"image": body["image"]} if planning else {**body, "args": None}
        if body.get("mounts"):
            # claims: ours are mounted in every step (docs/recipes.md, "Claims")
            body["mounts"] = [
                m for m in body["mounts"] if not m["mountPath"].startswith("/mnt/data/")
            ]
        fans_out = "withParam" in task or "withSequence" in task
        steps.append(
            (name, task["template"], after, fans_out, manifests, parameters.get("z-level"), body)
        )
    return steps


def _without(steps: list[tuple[Any, ...]], name: str) -> list[tuple[Any, ...]]:
    """`steps` without the step `name`, those that waited for it waiting for what it did."""
    [removed] = [step for step in steps if step[0] == name]
    return [
        (
            *step[:2],
            sorted({d for dep in step[2] for d in (removed[2] if dep == name else [dep])}),
            *step[3:],
        )
        for step in steps
        if step[0] != name
    ]


def _agree_with_0_4_2(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    their_steps = [
        (_VIZ_NAMES.get(step[0], step[0]), _VIZ_NAMES.get(step[1], step[1]), *step[2:])
        for step in _viz_steps(theirs)
    ]
    our_steps = _viz_steps(ours)
    if {"fetch"} & {step[0] for step in our_steps} - {step[0] for step in their_steps}:
        # 0.4.2's serial form from urls has no planning step: it passes the URLs inline
        # (docs/recipes.md, "Inputs are fetched once"); the rest must agree
        our_steps = [(*step[:4], [], *step[5:]) for step in _without(our_steps, "fetch")]
    assert our_steps == their_steps
    _common_spec(ours, theirs, (*_SPEC_KEYS, "parallelism"))


def test_visualization_agrees_with_ogdc_runner_0_4_2(reference_repo: Path) -> None:
    theirs = committed("0.4.2")["recipes"]["viz-workflow"]["workflow"]
    _agree_with_0_4_2(render(load(reference_repo, "viz-workflow")), theirs)


@pytest.mark.parametrize("variant", sorted(VIZ_VARIANTS))
def test_visualization_variants_agree_with_ogdc_runner_0_4_2(
    reference_repo: Path, tmp_path: Path, variant: str
) -> None:
    """viz-workflow serial, from a claim, with stages off: as 0.4.2 renders each."""
    directory = write_viz_variant(reference_repo, tmp_path / "recipes", variant)
    committed_variant = committed("0.4.2")["viz_variants"][variant]
    assert committed_variant["recipe_sha256"] == recipe_digest(directory)
    recipe = load_recipe(tmp_path, f"recipes/{directory.name}")
    inputs = [] if VIZ_VARIANTS[variant][2] else None
    _agree_with_0_4_2(render(recipe, inputs), committed_variant["workflow"])
