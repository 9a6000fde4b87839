"""Visualization recipes as ogdc-runner 0.4.2 renders them (docs/recipes.md, "workflow:
visualization"): serial and parallel forms, the stages the configuration turns on, partition
sizes, parallelism, the VIZ_WORKFLOW_* settings, clear errors for configurations that cannot
be rendered, and the steps' Python run against a stand-in pdgworkflow that records its calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ogdc_hooks.recipes.render import RenderSettings, UnsupportedWorkflow, render_workflow
from ogdc_hooks.workflow_settings import VizResources, viz_resources
from tests.recipes.test_render_helpers import (
    make_recipe,
    render,
    run_identity,
    templates,
    url_inputs,
    url_params,
)

CLAIM = [{"type": "pvc_mount", "claim_name": "cephfs-qgnet-ogdc-workflow-pvc", "path": "raw"}]
WORKDIR = "/mnt/workflow/viz"


def viz(
    count: int = 1, *, config: str = "{}", claims: bool = False, **parallel: Any
) -> tuple[Any, list[Any]]:
    """A visualization recipe of `count` urls (or a claim) and the inputs to render it with."""
    recipe = make_recipe(
        "Viz",
        params=CLAIM if claims else url_params(count),
        viz={"parallel": parallel} if parallel else {},
        viz_config=config,
    )
    return recipe, [] if claims else url_inputs(count)


def dag(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["name"]: task for task in templates(manifest)["main"]["dag"]["tasks"]}


def test_serial_runs_every_stage_in_one_pod() -> None:
    recipe, inputs = viz(3)
    manifest = render(recipe, inputs=inputs)
    tasks = dag(manifest)
    assert list(tasks) == ["check-output", "setup-config", "fetch", "run-viz-serial"]
    assert tasks["run-viz-serial"]["depends"] == "fetch"
    assert tasks["run-viz-serial"]["arguments"]["parameters"] == [
        {"name": "manifest", "value": f"{WORKDIR}/partition-manifests/stage-files/partition-0.json"}
    ]
    assert "withParam" not in tasks["run-viz-serial"]
    assert "parallelism" not in manifest["spec"]
    serial = templates(manifest)["run-viz-serial"]["script"]
    assert serial["resources"]["limits"] == {"cpu": "4", "memory": "12Gi"}  # raster
    # every file in the one partition
    assert "size = max(len(files), 1)" in templates(manifest)["fetch"]["script"]["source"]


@pytest.mark.parametrize(
    ("count", "size", "default", "partitions"),
    [(2500, None, 1000, "3"), (5, None, 2, "3"), (5, 5, 2, "1"), (7, 1, 1000, "7")],
)
def test_partition_size_or_the_default_setting(
    count: int, size: int | None, default: int, partitions: str
) -> None:
    recipe, inputs = viz(count, enabled=True, partition_size=size)
    settings = RenderSettings(viz_default_partition_size=default)
    manifest = render_workflow(recipe, inputs, settings, run_identity())
    assert dag(manifest)["stage-files"]["withSequence"] == {"count": partitions}
    discovery = templates(manifest)["discover-staged-tiles"]["script"]["source"]
    assert f"size = {size or default}\n" in discovery


@pytest.mark.parametrize(("max_parallelism", "expected"), [(None, 5), (2, 2)])
def test_parallelism_is_max_parallelism_else_the_limit(
    max_parallelism: int | None, expected: int
) -> None:
    recipe, inputs = viz(enabled=True, max_parallelism=max_parallelism)
    assert render(recipe, inputs=inputs)["spec"]["parallelism"] == expected


def test_images_and_resources_come_from_the_settings() -> None:
    recipe, inputs = viz(enabled=True)
    settings = RenderSettings(
        viz_image="registry.example/pdg:2",
        viz_setup_image="registry.example/setup:1",
        viz_resources=viz_resources('{"discovery": {"requests": {"cpu": "100m"}}}'),
    )
    by_name = templates(render_workflow(recipe, inputs, settings, run_identity()))
    assert by_name["stage-viz-config"]["container"]["image"] == "registry.example/setup:1"
    assert by_name["fetch"]["script"]["image"] == "registry.example/setup:1"
    for name in ("stage-files", "discover-staged-tiles", "create-web-tiles"):
        assert by_name[name]["script"]["image"] == "registry.example/pdg:2"
    assert by_name["discover-all-geotiffs"]["script"]["resources"] == {
        "requests": {"cpu": "100m", "memory": "512Mi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    assert by_name["create-3dtiles"]["script"]["resources"]["requests"] == dict(
        VizResources().threedtile.requests
    )


@pytest.mark.parametrize(
    ("limit", "expected"), [(3, {"limit": "3", "retryPolicy": "OnError"}), (None, None)]
)
def test_retry_strategy_of_every_workflow(limit: int | None, expected: Any) -> None:
    settings = RenderSettings(retry_limit=limit, retry_policy="OnError")
    for recipe, inputs in (viz(), (make_recipe(), url_inputs(1))):
        manifest = render_workflow(recipe, inputs, settings, run_identity())
        assert manifest["spec"].get("retryStrategy") == expected


def test_the_configuration_chooses_the_stages() -> None:
    config = json.dumps({"z_range": [1, 3], "enable_3dtiles": False, "enable_web_tiles": False})
    recipe, inputs = viz(config=config, enabled=True)
    tasks = dag(render(recipe, inputs=inputs))
    assert list(tasks) == [
        "check-output",
        "setup-config",
        "fetch",
        "stage-files",
        "discover-staged-tiles",
        "rasterize-max-z",
        "discover-parents-z-2",
        "create-composites-z-2",
        "discover-parents-z-1",
        "create-composites-z-1",
    ]


def test_without_the_stager_urls_are_not_fetched() -> None:
    recipe, inputs = viz(config='{"enable_stager": false, "z_range": [0, 0]}', enabled=True)
    tasks = dag(render(recipe, inputs=inputs))
    assert "fetch" not in tasks and "stage-files" not in tasks
    assert tasks["discover-staged-tiles"]["depends"] == "setup-config"
    assert tasks["discover-all-geotiffs"]["depends"] == "rasterize-max-z"


def test_without_the_stager_claimed_files_are_the_tiles() -> None:
    recipe, _ = viz(config='{"enable_stager": false, "z_range": [0, 0]}', claims=True, enabled=True)
    tasks = dag(render(recipe, inputs=[]))
    assert "discover-staged-tiles" not in tasks
    over_listing = "{{tasks.list-inputs.outputs.parameters.partitions}}"
    for name in ("rasterize-max-z", "create-3dtiles"):
        assert tasks[name]["withParam"] == over_listing
        assert tasks[name]["depends"] == "list-inputs"


def test_claimed_geotiffs_become_web_tiles_directly() -> None:
    config = '{"enable_stager": false, "enable_raster": false, "enable_3dtiles": false}'
    recipe, _ = viz(config=config, claims=True, enabled=True)
    manifest = render(recipe, inputs=[])
    tasks = dag(manifest)
    assert list(tasks) == ["check-output", "setup-config", "list-inputs", "create-web-tiles"]
    assert tasks["create-web-tiles"]["withParam"] == (
        "{{tasks.list-inputs.outputs.parameters.partitions}}"
    )
    mounts = templates(manifest)["create-web-tiles"]["script"]["volumeMounts"]
    assert {
        "name": "workflow-volume",
        "mountPath": "/mnt/data/cephfs-qgnet-ogdc-workflow-pvc/",
        "readOnly": True,
    } in mounts


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[]", "must be a JSON object"),
        ('{"z_range": [3, 1]}', "z_range of the visualization configuration"),
        ('{"z_range": "0-5"}', "z_range of the visualization configuration"),
        ('{"dir_staged": "../../elsewhere"}', "dir_staged of the visualization configuration"),
        ('{"dir_input": "in{{x}}"}', "dir_input of the visualization configuration"),
    ],
)
def test_configurations_that_cannot_be_rendered(config: str, message: str) -> None:
    recipe, inputs = viz(config=config)
    with pytest.raises(UnsupportedWorkflow, match=message):
        render(recipe, inputs=inputs)


def test_setup_creates_only_the_enabled_stages_relative_directories() -> None:
    config = json.dumps(
        {
            "dir_input": "in/",
            "dir_staged": "/mnt/data/x/staged",
            "dir_geotiff": "tif",
            "enable_raster": False,
        }
    )
    recipe, inputs = viz(config=config)
    script = templates(render(recipe, inputs=inputs))["stage-viz-config"]["container"]["args"][0]
    assert "mkdir -p /mnt/workflow/viz/in && " in script
    assert "mkdir -p /mnt/data" not in script and "mkdir -p /mnt/workflow/viz/tif" not in script
    assert "mkdir -p /mnt/workflow/viz/output/3dtiles" in script


# --- the steps' Python, run against a stand-in pdgworkflow ------------------------------------

FAKE_PDGWORKFLOW = """
import json
import os
from pathlib import Path

CALLS = Path(os.environ["OGDC_TEST_CALLS"])
FILES = {
    ("staged", 2): ["staged/2/a.gpkg", "staged/2/b.gpkg", "staged/2/c.gpkg"],
    ("geotiff", 2): ["geotiff/2/0.tif", "geotiff/2/1.tif", "geotiff/2/2.tif"],
    ("geotiff", None): ["geotiff/1/0.tif", "geotiff/2/0.tif"],
}


def record(*call):
    with CALLS.open("a") as calls:
        calls.write(json.dumps(call) + "\\n")


class Config:
    def get_max_z(self):
        return 2

    def __getattr__(self, name):
        return lambda: name != "is_generate_wmtsCapabilities_enabled"


class Tiles:
    def get_filenames_from_dir(self, base, z=None):
        return FILES[(base, z)]

    def get_parent_tile(self, path):
        return "parent-of-" + path.rsplit("/", 1)[-1][0] if "2/" in path else None

    def path_from_tile(self, tile, base_dir):
        return base_dir + "/1/" + tile

    def tile_from_path(self, path):
        return "tile:" + path


class Tiler:
    def parent_geotiff_from_children(self, tile):
        record("composite", tile)

    def webtile_from_geotiff(self, path):
        record("webtile", path)


class WorkflowManager:
    def __init__(self, config):
        record("config", config)
        self.config = Config()
        self.tiles = Tiles()

    def __getattr__(self, name):
        if name == "init_raster_tiler":
            return Tiler
        return lambda *args: record(name, *args)
"""


def run_step(
    manifest: dict[str, Any], task: str, tmp_path: Path, manifests: dict[str, list[str]]
) -> tuple[str, list[list[Any]]]:
    """Run `task`'s script as Argo would (parameters substituted, the workdir in tmp_path)."""
    by_name, tasks = templates(manifest), dag(manifest)
    workdir = tmp_path / "viz"
    (workdir / "partition-manifests").mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text('{"z_range": [0, 2]}')
    source = by_name[tasks[task]["template"]]["script"]["source"]
    for parameter in tasks[task].get("arguments", {}).get("parameters", []):
        value = parameter["value"].replace("{{item}}", "0")
        source = source.replace(f"{{{{inputs.parameters.{parameter['name']}}}}}", value)
    source = source.replace(WORKDIR, str(workdir))
    for stage, items in manifests.items():
        (workdir / "partition-manifests" / stage).mkdir(parents=True, exist_ok=True)
        (workdir / "partition-manifests" / stage / "partition-0.json").write_text(json.dumps(items))
    (tmp_path / "pdgworkflow.py").write_text(FAKE_PDGWORKFLOW)
    calls = tmp_path / "calls.jsonl"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OGDC_TEST_CALLS": str(calls)}
    done = subprocess.run(
        [sys.executable, "-c", source], env=env, capture_output=True, text=True, check=True
    )
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert recorded[0] == ["config", {"z_range": [0, 2]}]
    return done.stdout, recorded[1:]


@pytest.fixture
def parallel_manifest() -> dict[str, Any]:
    recipe, inputs = viz(enabled=True, partition_size=2)
    return render(recipe, inputs=inputs)


def test_stage_rasterize_and_3d_tiles_work_through_their_partition(
    parallel_manifest: dict[str, Any], tmp_path: Path
) -> None:
    for task, stage, action in (
        ("stage-files", "stage-files", "stage"),
        ("rasterize-max-z", "staged-tiles", "rasterize_vector"),
        ("create-3dtiles", "staged-tiles", "staged_to_3dtile"),
    ):
        out, calls = run_step(parallel_manifest, task, tmp_path, {stage: ["x", "y"]})
        assert (out, calls) == ("", [[action, "x"], [action, "y"]])


def test_discovery_writes_partitions_and_prints_only_their_ids(
    parallel_manifest: dict[str, Any], tmp_path: Path
) -> None:
    out, _ = run_step(parallel_manifest, "discover-staged-tiles", tmp_path, {})
    assert json.loads(out) == [0, 1]  # three staged tiles in partitions of two
    written = tmp_path / "viz" / "partition-manifests" / "staged-tiles"
    assert json.loads((written / "partition-1.json").read_text()) == ["staged/2/c.gpkg"]
    out, _ = run_step(parallel_manifest, "discover-parents-z-1", tmp_path, {})
    assert json.loads(out) == [0, 1]
    parents = tmp_path / "viz" / "partition-manifests" / "parent-tiles-z-1" / "partition-0.json"
    assert json.loads(parents.read_text()) == ["geotiff/1/parent-of-0", "geotiff/1/parent-of-1"]


def test_composites_and_web_tiles(parallel_manifest: dict[str, Any], tmp_path: Path) -> None:
    _, calls = run_step(
        parallel_manifest, "create-composites-z-1", tmp_path, {"parent-tiles-z-1": ["p"]}
    )
    assert calls == [["composite", "tile:p"]]
    _, calls = run_step(parallel_manifest, "create-web-tiles", tmp_path, {"geotiffs": ["t"]})
    assert calls == [["webtile", "t"]]


def test_serial_runs_the_enabled_stages(tmp_path: Path) -> None:
    recipe, inputs = viz(2)
    manifest = render(recipe, inputs=inputs)
    _, calls = run_step(manifest, "run-viz-serial", tmp_path, {"stage-files": ["a", "b"]})
    assert calls == [["stage", "a"], ["stage", "b"], ["run_rasterization"], ["run_3d_tiling"]]
