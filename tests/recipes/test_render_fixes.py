"""Where docs/recipes.md marks a fix over ogdc-runner 0.3.0, and what 0.3.0 could not render:
names within 63 characters, the output guard inside the workflow, parallel workflows that
stay small and publish, pvc_mount inputs, and clear errors for what cannot be rendered."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from ogdc_hooks.recipes.model import InputFile
from ogdc_hooks.recipes.render import (
    MissingInputs,
    RenderError,
    RenderSettings,
    RunIdentity,
    UnsupportedOutput,
    UnsupportedWorkflow,
    render_workflow,
)
from ogdc_hooks.recipes.render.names import generate_name, label_value
from tests.recipes.test_render_helpers import (
    make_recipe,
    render,
    run_identity,
    shell_script,
    templates,
    url_inputs,
    url_of,
    url_params,
)

SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def dag_tasks(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    main = templates(manifest)["main"]
    return {task["name"]: task for task in main["dag"]["tasks"]}


def parallel_recipe(count: int, *, size: int = 1, output: str = "pvc", **parallel: Any) -> Any:
    return make_recipe(
        "Parallel test",
        params=url_params(count),
        output=output,
        commands=("gdalinfo $INPUT_FILE > $OUTPUT_FILE.txt", "cp $INPUT_FILE $OUTPUT_DIR/"),
        parallel={"enabled": True, "partition_size": size, **parallel},
    )


# --- names and labels -----------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 40, 51, 52, 56, 63, 64, 200])
@pytest.mark.parametrize("kind", ["shell", "visualization"])
def test_final_name_at_most_63_counting_the_dashes(length: int, kind: str) -> None:
    recipe_id = ("a" * length)[:length]
    name = generate_name(recipe_id, kind) + "x1y2z"
    assert len(name) <= 63
    assert SUBDOMAIN.fullmatch(name)
    assert name.startswith(recipe_id[: 63 - 5 - len(kind) - 2])
    assert name.endswith(f"-{kind}-x1y2z")


def test_ogdc_runner_would_have_made_65_characters() -> None:
    recipe_id = "b" * 60
    ours = generate_name(recipe_id, "shell")
    assert len(ours) == 63 - 5  # exactly the room Argo leaves
    assert len(recipe_id[: 63 - 5 - len("shell")] + "-shell-" + "x1y2z") == 65


@pytest.mark.parametrize("recipe_id", ["v1.2-data", "a.-b", "x" * 50 + ".-y", "-lead", ".."])
def test_names_stay_valid_for_awkward_ids(recipe_id: str) -> None:
    name = generate_name(recipe_id, "shell") + "abcde"
    assert SUBDOMAIN.fullmatch(name) and len(name) <= 63


@pytest.mark.parametrize(
    "value", ["simple", "a" * 100, "-x-", "x" * 62 + ".-", "with space/slash", "..", ""]
)
def test_label_values_follow_kubernetes_rules(value: str) -> None:
    cleaned = label_value(value)
    assert len(cleaned) <= 63 and LABEL_VALUE.fullmatch(cleaned) and cleaned


def test_labels_and_annotations_identify_the_run() -> None:
    long_name = "A very long recipe name " + "with many words " * 6
    manifest = render(
        make_recipe(long_name.strip()),
        run_id="f" * 32,
        repository="QGreenland-Net/ogdc-recipes",
        commit="a" * 40,
        recipe_path="recipes/long",
        requested_by="alice",
    )
    metadata = manifest["metadata"]
    labels = metadata["labels"]
    assert labels["ogdc/run-id"] == "f" * 32
    assert labels["app.kubernetes.io/managed-by"] == "ogdc-hooks"
    assert len(labels["ogdc/recipe-id"]) <= 63
    for value in labels.values():
        assert LABEL_VALUE.fullmatch(value) and len(value) <= 63
    assert metadata["annotations"]["ogdc/repository"] == "QGreenland-Net/ogdc-recipes"
    assert metadata["annotations"]["ogdc/commit"] == "a" * 40
    assert metadata["annotations"]["ogdc/recipe-path"] == "recipes/long"
    assert metadata["annotations"]["ogdc/requested-by"] == "alice"
    assert metadata["annotations"]["ogdc/recipe-id"] == long_name.strip().lower().replace(" ", "-")
    assert len(metadata["generateName"]) + 5 <= 63


def test_run_identity_wants_a_hex_uuid() -> None:
    with pytest.raises(ValueError, match="UUID in hex"):
        RunIdentity(run_id="not-a-uuid", recipe_path="recipes/x")


# --- settings -------------------------------------------------------------------------------


def test_every_setting_reaches_the_workflow() -> None:
    settings = RenderSettings(
        namespace="other-ns",
        service_account="robot",
        image_tag="v9.9",
        workflow_pvc="my-pvc",
        max_parallel_limit=3,
    )
    recipe = parallel_recipe(4)
    manifest = render_workflow(recipe, url_inputs(4), settings, run_identity())
    spec = manifest["spec"]
    assert manifest["metadata"]["namespace"] == "other-ns"
    assert spec["serviceAccountName"] == "robot"
    assert spec["artifactGC"]["serviceAccountName"] == "robot"
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "my-pvc"
    assert spec["parallelism"] == 3
    images = {t.get("container", t.get("script", {})).get("image") for t in spec["templates"]}
    assert images - {None} == {"ghcr.io/qgreenland-net/ogdc-runner:v9.9"}


def test_settings_from_the_service_configuration() -> None:
    from ogdc_hooks.settings import load_settings

    settings = load_settings(
        {
            "ARGO_NAMESPACE": "ns1",
            "ARGO_SERVICE_ACCOUNT_NAME": "sa1",
            "OGDC_RUNNER_IMAGE_TAG": "t1",
            "OGDC_WORKFLOW_PVC_NAME": "pvc1",
            "OGDC_MAX_PARALLEL_LIMIT": "7",
        }
    )
    assert RenderSettings.from_settings(settings) == RenderSettings(
        namespace="ns1",
        service_account="sa1",
        image_tag="t1",
        workflow_pvc="pvc1",
        max_parallel_limit=7,
    )


# --- the output guard (fix: inside the workflow) -----------------------------------------------


def test_pvc_output_is_checked_first_and_published_on_the_pvc() -> None:
    recipe = make_recipe("Pvc out", output="pvc")
    manifest = render(recipe)
    by_name = templates(manifest)
    steps = [group[0]["name"] for group in by_name["main"]["steps"]]
    assert steps[0] == "check-output" and steps[-1] == "publish-data"
    check = shell_script(by_name["check-output"])
    assert check.startswith("if [ -e /mnt/workflow/pvc-out ]; then echo ")
    assert "already exists" in check and check.endswith("exit 1; fi")
    assert by_name["check-output"]["container"]["volumeMounts"] == [
        {"name": "workflow-volume", "mountPath": "/mnt/workflow"}
    ]
    publish = by_name["publish-data"]
    assert shell_script(publish) == "rsync --progress /input_dir/* /output_dir/"
    assert publish["container"]["volumeMounts"] == [
        {"name": "workflow-volume", "mountPath": "/output_dir/", "subPath": "pvc-out"}
    ]
    assert manifest["spec"]["ttlStrategy"] == {"secondsAfterSuccess": 86400}


def test_overwrite_clears_the_published_output_first() -> None:
    manifest = render(make_recipe("Pvc out", output="pvc"), overwrite=True)
    by_name = templates(manifest)
    assert by_name["main"]["steps"][0][0]["name"] == "clear-output"
    assert shell_script(by_name["clear-output"]) == "rm -rf /mnt/workflow/pvc-out"
    assert "check-output" not in by_name
    assert manifest["metadata"]["annotations"]["ogdc/overwrite"] == "true"


def test_temporary_sequential_output_needs_no_guard() -> None:
    for overwrite in (False, True):
        manifest = render(make_recipe(output="temporary"), overwrite=overwrite)
        assert templates(manifest)["main"]["steps"][0][0]["name"] == "fetch"


def test_the_guard_really_guards(tmp_path: Any) -> None:
    """Run the check script against a real directory standing in for the PVC."""
    import subprocess

    script = shell_script(templates(render(make_recipe("Pvc out")))["check-output"])
    script = script.replace("/mnt/workflow", str(tmp_path))
    assert subprocess.run(["sh", "-c", script], check=False).returncode == 0
    (tmp_path / "pvc-out").mkdir()
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "already exists" in done.stderr and "overwrite" in done.stderr


# --- parallel (fixes: manifests on the PVC, small spec, publishing) -----------------------------


def test_parallel_structure() -> None:
    recipe = parallel_recipe(7, size=3)
    manifest = render(recipe, inputs=url_inputs(7))
    tasks = dag_tasks(manifest)
    assert list(tasks) == [
        "check-output",
        "fetch",
        "cmd-0",
        "cmd-1",
        "collect-output",
        "publish-data",
    ]
    assert tasks["fetch"]["depends"] == "check-output"
    assert tasks["cmd-0"]["depends"] == "fetch"
    assert tasks["cmd-1"]["depends"] == "cmd-0"  # waits for every partition of cmd-0
    assert tasks["collect-output"]["depends"] == "cmd-1"
    assert tasks["publish-data"]["depends"] == "collect-output"
    for index in (0, 1):
        task = tasks[f"cmd-{index}"]
        assert task["withSequence"] == {"count": "3"}  # ceil(7 / 3); the schema wants a string
        assert task["arguments"]["parameters"] == [
            {"name": "partition-id", "value": "{{item}}"},
            {
                "name": "manifest",
                "value": "/mnt/workflow/parallel-test/partition-manifests/"
                f"cmd-{index}/partition-{{{{item}}}}.json",
            },
        ]
    assert tasks["publish-data"]["arguments"]["artifacts"] == [
        {"name": "input-dir", "from": "{{tasks.collect-output.outputs.artifacts.output-dir}}"}
    ]
    by_name = templates(manifest)
    assert shell_script(by_name["publish-data"]) == "rsync --progress /input_dir/* /output_dir/"
    assert manifest["spec"]["parallelism"] == 5


def test_parallel_temporary_output_is_published_as_a_zip() -> None:
    manifest = render(parallel_recipe(2, output="temporary"), inputs=url_inputs(2))
    by_name = templates(manifest)
    assert by_name["publish-data"]["outputs"]["artifacts"][0]["name"] == "published_zip"
    assert next(iter(dag_tasks(manifest))) == "clear-scratch"
    assert manifest["spec"]["ttlStrategy"] == {"secondsAfterSuccess": 604800}


def test_max_parallelism_overrides_the_limit() -> None:
    manifest = render(parallel_recipe(3, max_parallelism=2), inputs=url_inputs(3))
    assert manifest["spec"]["parallelism"] == 2


@pytest.mark.parametrize("count", [10, 300, 3000])
def test_parallel_spec_has_each_url_once_and_no_file_list(count: int) -> None:
    manifest = render(parallel_recipe(count), inputs=url_inputs(count))
    text = json.dumps(manifest)
    for index in (0, count // 2, count - 1):
        assert text.count(url_of(index)) == 1
    assert len(templates(manifest)) == 7  # guard, fetch, 2 commands, collect, publish, main
    assert len(dag_tasks(manifest)) == 6


def test_parallel_size_grows_linearly_and_stays_small() -> None:
    sizes = {
        count: len(json.dumps(render(parallel_recipe(count), inputs=url_inputs(count))))
        for count in (1000, 2000, 10_000)
    }
    per_url = (sizes[2000] - sizes[1000]) / 1000
    assert per_url < 60  # about one line of the URL list per input
    assert abs((sizes[10_000] - sizes[1000]) / 9000 - per_url) < 1
    assert sizes[10_000] < 1024 * 1024


def test_input_names_other_than_the_url_tail_travel_encoded() -> None:
    files = [
        InputFile("https://node.example/v2/object/urn%3Auuid%3A1", "seal tags {1}.csv"),
        InputFile("https://node.example/data/b.tif", "b.tif"),
    ]
    recipe = make_recipe(
        "Named",
        params=[{"type": "dataone", "dataset_identifier": "pkg"}],
        commands=("true",),
        parallel={"enabled": True},
    )
    manifest = render(recipe, inputs=files)
    [listed] = templates(manifest)["fetch"]["inputs"]["artifacts"]
    assert listed["raw"]["data"] == (
        "https://node.example/v2/object/urn%3Auuid%3A1\tseal tags %7B1%7D.csv\n"
        "https://node.example/data/b.tif\n"
    )


def test_parallel_refuses_two_inputs_saved_under_one_name() -> None:
    files = [
        InputFile("https://a.example/x.tif", "x.tif"),
        InputFile("https://b.example/x.tif", "x.tif"),
    ]
    recipe = parallel_recipe(2)
    with pytest.raises(MissingInputs, match=r"both be saved as 'x\.tif'"):
        render(recipe, inputs=files)


# --- pvc_mount inputs -----------------------------------------------------------------------


def pvc_recipe(parallel: bool) -> Any:
    return make_recipe(
        "From pvc",
        params=[
            {
                "type": "pvc_mount",
                "claim_name": "archive-pvc",
                "path": "/raw/2024/",
                "glob": "*.tif",
            },
            {"type": "pvc_mount", "claim_name": "cephfs-qgnet-ogdc-workflow-pvc", "path": "shared"},
            {"type": "pvc_mount", "claim_name": "archive-pvc", "path": "other"},
        ],
        parallel={"enabled": parallel} if parallel else None,
    )


@pytest.mark.parametrize("parallel", [False, True])
def test_pvc_mount_claims_are_mounted_read_only(parallel: bool) -> None:
    manifest = render(pvc_recipe(parallel), inputs=[])
    volumes = manifest["spec"]["volumes"]
    assert [volume["name"] for volume in volumes] == ["workflow-volume", "input-pvc-0"]
    assert volumes[1]["persistentVolumeClaim"] == {"claimName": "archive-pvc", "readOnly": True}
    planner = templates(manifest)["list-inputs" if parallel else "fetch"]
    mounts = planner["script"]["volumeMounts"]
    assert {
        "name": "input-pvc-0",
        "mountPath": "/mnt/data/archive-pvc/",
        "readOnly": True,
    } in mounts
    assert {
        "name": "workflow-volume",
        "mountPath": "/mnt/data/cephfs-qgnet-ogdc-workflow-pvc/",
        "readOnly": True,
    } in mounts
    source = planner["script"]["source"]
    assert '("/mnt/data/archive-pvc/raw/2024", "*.tif")' in source
    assert '("/mnt/data/cephfs-qgnet-ogdc-workflow-pvc/shared", "*")' in source


def test_parallel_pvc_mount_partitions_come_from_the_planning_step() -> None:
    manifest = render(pvc_recipe(True), inputs=[])
    tasks = dag_tasks(manifest)
    assert list(tasks)[:3] == ["check-output", "list-inputs", "cmd-0"]
    assert tasks["cmd-0"]["withParam"] == "{{tasks.list-inputs.outputs.parameters.partitions}}"
    assert "withSequence" not in tasks["cmd-0"]
    outputs = templates(manifest)["list-inputs"]["outputs"]["parameters"]
    assert outputs == [{"name": "partitions", "valueFrom": {"path": "/tmp/ogdc/partitions.json"}}]


# --- what cannot be rendered ----------------------------------------------------------------


def test_dataone_output_is_not_supported_yet() -> None:
    with pytest.raises(UnsupportedOutput, match=r"^dataone output is not supported yet$"):
        render(make_recipe(output="dataone"))


def test_dataone_params_without_resolved_inputs() -> None:
    recipe = make_recipe(params=[{"type": "dataone", "dataset_identifier": "resource_map_x"}])
    with pytest.raises(MissingInputs, match="dataone inputs must be resolved"):
        render(recipe, inputs=[])


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (InputFile("https://a.example/x", "../x"), "cannot be used as a file name"),
        (InputFile("https://a.example/x", ""), "cannot be used as a file name"),
        (InputFile("ftp://a.example/x", "x"), "not an absolute http"),
        (InputFile("https://a.example/x y", "x"), "not an absolute http"),
    ],
)
def test_unusable_input_files(file: InputFile, message: str) -> None:
    with pytest.raises(MissingInputs, match=message):
        render(make_recipe(), inputs=[file])


def test_files_given_to_a_pvc_only_recipe() -> None:
    with pytest.raises(MissingInputs, match="only pvc_mount"):
        render(pvc_recipe(False), inputs=url_inputs(1))


def test_visualization_needs_pvc_output() -> None:
    viz = make_recipe("Viz", viz={}, output="temporary")
    with pytest.raises(UnsupportedWorkflow, match="only pvc output"):
        render(viz)


def test_a_recipe_without_commands() -> None:
    with pytest.raises(UnsupportedWorkflow, match="no commands"):
        render(make_recipe(commands=()))


@pytest.mark.parametrize("name", [".", ".."])
def test_ids_that_cannot_name_a_directory(name: str) -> None:
    with pytest.raises(RenderError, match="cannot name a directory"):
        render(make_recipe(name))
