"""Every reference recipe renders into the workflow ogdc-runner 0.3.0 builds, step by step,
except where docs/recipes.md marks a fix (tested in test_render_fixes.py).

The expectations are written out here, and ogdc-runner 0.3.0's own rendering of the
same recipes (tests/data/ogdc-runner-0.3.0/renders.json) is compared too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ogdc_hooks.recipes.load import load_recipe
from ogdc_hooks.recipes.model import Recipe
from tests.recipes.test_render_helpers import (
    REFERENCE_NAMES,
    k8s_expand,
    recipe_digest,
    render,
    resolved_inputs,
    shell_script,
    templates,
)
from tests.support.data import OGDC_RUNNER_RENDERS

SHELL_NAMES = [name for name in REFERENCE_NAMES if name != "viz-workflow"]
IMAGE = "ghcr.io/qgreenland-net/ogdc-runner:latest"


def ogdc_runner_commands(recipe_dir: Path) -> list[str]:
    """How ogdc-runner 0.3.0 reads recipe.sh (same result as ours on these files)."""
    lines = (recipe_dir / "recipe.sh").read_text().split("\n")
    return [line for line in lines if line and not line.startswith("#")]


def load(reference_repo: Path, name: str) -> Recipe:
    return load_recipe(reference_repo, f"recipes/{name}")


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


def test_visualization_reference_recipe_step_by_step(reference_repo: Path) -> None:
    recipe = load(reference_repo, "viz-workflow")
    manifest = render(recipe)
    common_expectations(manifest, recipe, "visualization", 86400)
    metadata = manifest["metadata"]
    assert metadata["labels"]["workflows.argoproj.io/archive-strategy"] == "false"
    assert metadata["annotations"]["workflows.argoproj.io/description"] == (
        "Visualization workflow for OGDC"
    )
    by_name = templates(manifest)
    [main] = [t for t in manifest["spec"]["templates"] if t["name"] == "main"]
    tasks = {task["name"]: task for task in main["dag"]["tasks"]}
    # ogdc-runner's three tasks, after the output guard (fix: no separate workflow)
    assert list(tasks) == ["check-output", "stage-viz-config", "batching", "tiling"]
    assert tasks["stage-viz-config"]["depends"] == "check-output"
    assert tasks["batching"]["depends"] == "check-output"
    assert tasks["tiling"]["depends"] == "stage-viz-config && batching"
    assert tasks["tiling"]["withParam"] == "{{tasks.batching.outputs.result}}"
    url = "https://demo.arcticdata.io/tiles/OGDC/QGnet/viz-workflow/ice_basins.gpkg"
    assert tasks["batching"]["arguments"]["parameters"] == [
        {"name": "input_url", "value": url},
        {"name": "recipe_id", "value": recipe.id},
        {"name": "num_features", "value": "250"},
    ]
    assert tasks["tiling"]["arguments"]["parameters"] == [
        {"name": "chunk-filepath", "value": "{{item}}"},
        {"name": "recipe_id", "value": recipe.id},
    ]

    stage = by_name["stage-viz-config"]
    assert stage["container"]["image"] == "alpine:latest"
    assert stage["container"]["volumeMounts"] == [
        {"name": "workflow-volume", "mountPath": "/mnt/workflow/"}
    ]
    script = shell_script(stage)
    workdir = f"/mnt/workflow/{recipe.id}"
    for directory in ("input", "batch", "output/staged", "output/geotiff", "output/3dtiles"):
        assert f"mkdir -p {workdir}/{directory} && " in script
    assert script.endswith(f"> {workdir}/config.json")

    batching, tiling = by_name["batching"], by_name["tiling"]
    for template in (batching, tiling):
        assert template["script"]["image"] == "ghcr.io/rushirajnenuji/viz-staging:latest"
        assert template["script"]["command"] == ["python"]
        assert template["script"]["volumeMounts"] == [
            {"name": "workflow-volume", "mountPath": "/mnt/workflow"}
        ]
    assert batching["inputs"]["artifacts"] == [
        {
            "name": "batch-input",
            "path": "/mnt/workflow/{{inputs.parameters.recipe_id}}/input/input.gpkg",
            "http": {"url": "{{inputs.parameters.input_url}}"},
        }
    ]
    assert batching["outputs"]["artifacts"] == [
        {"name": "batch-output", "path": "/mnt/workflow/{{inputs.parameters.recipe_id}}/batch"}
    ]
    assert "gpd.read_file" in batching["script"]["source"]
    assert "TileStager(config, check_footprints=False)" in tiling["script"]["source"]


@pytest.fixture(scope="module")
def ogdc_runner_render() -> dict[str, Any]:
    """ogdc-runner 0.3.0's own rendering of every reference recipe, as committed in tests/data."""
    renders: dict[str, Any] = json.loads(OGDC_RUNNER_RENDERS.read_text())
    return renders


def test_committed_renders_were_made_from_the_vendored_recipes(
    reference_repo: Path, ogdc_runner_render: dict[str, Any]
) -> None:
    """A changed recipe without a new render (bench/regenerate_reference_renders.py) fails here."""
    assert ogdc_runner_render["generator"] == "ogdc-runner==0.3.0"
    made_from = {
        name: entry["recipe_sha256"] for name, entry in ogdc_runner_render["recipes"].items()
    }
    assert made_from == {
        name: recipe_digest(reference_repo / "recipes" / name) for name in REFERENCE_NAMES
    }


def _normalise(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    """The parts that must agree, template by template in step order: what runs and on what."""
    by_name = templates(manifest)
    [main] = [t for t in manifest["spec"]["templates"] if t["name"] == "main"]
    if "steps" in main:
        order = [group[0]["template"] for group in main["steps"]]
    else:
        order = [task["template"] for task in main["dag"]["tasks"]]
    order = [name for name in order if name not in ("check-output", "clear-output")]
    seen = []
    for position, name in enumerate(order):
        template = by_name[name]
        body = template.get("container") or template["script"]
        seen.append(
            (
                "fetch" if position == 0 and "fetch-template" in name else name,
                {
                    "image": body["image"],
                    "command": body["command"],
                    "args": [k8s_expand(arg) for arg in body.get("args", [])],
                    "inputs": template.get("inputs", {}).get("artifacts"),
                    "outputs": template.get("outputs", {}).get("artifacts"),
                    "mounts": body.get("volumeMounts"),
                },
            )
        )
    return seen


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_agrees_with_ogdc_runner_itself(
    reference_repo: Path, ogdc_runner_render: dict[str, Any], name: str
) -> None:
    theirs = ogdc_runner_render["recipes"][name]
    assert "workflow" in theirs, theirs
    ours = render(load(reference_repo, name))
    their_steps, our_steps = _normalise(theirs["workflow"]), _normalise(ours)
    if name == "viz-workflow":
        # the staging script and the Python sources are ours; the rest must agree
        for (their_name, theirs_), (our_name, ours_) in zip(their_steps, our_steps, strict=True):
            assert their_name == our_name
            assert {k: v for k, v in theirs_.items() if k != "args"} == {
                k: v for k, v in ours_.items() if k != "args"
            }
    else:
        renamed = [("fetch" if n.endswith("-fetch-template-") else n, s) for n, s in their_steps]
        renamed = [("publish-data" if n == "publish-data-" else n, s) for n, s in renamed]
        assert our_steps == renamed
    for key in ("ttlStrategy", "artifactGC", "serviceAccountName", "volumes", "entrypoint"):
        assert ours["spec"][key] == theirs["workflow"]["spec"][key]
    assert ours["metadata"]["generateName"] == theirs["workflow"]["metadata"]["generateName"]
    for label, value in theirs["workflow"]["metadata"]["labels"].items():
        assert ours["metadata"]["labels"][label] == value
