"""`ogdc-hooks render DIR`: the workflow that would be submitted, as YAML or JSON, with
settings from the environment, DataONE through DATAONE_NODE_URL, and one-line errors."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from ogdc_hooks.cli.main import main
from ogdc_hooks.recipes.load import load_recipe
from ogdc_hooks.recipes.render import RenderSettings, RunIdentity, render_workflow
from tests.fakes.dataone import FakeDataOne
from tests.recipes.test_render_helpers import REFERENCE_NAMES, resolved_inputs


def test_json_is_what_the_service_would_submit(
    reference_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARGO_NAMESPACE", "elsewhere")
    monkeypatch.setenv("OGDC_RUNNER_IMAGE_TAG", "v1.2.3")
    assert (
        main(["render", str(reference_repo / "recipes" / "sea-ice-conc"), "--format", "json"]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    recipe = load_recipe(reference_repo, "recipes/sea-ice-conc")
    settings = RenderSettings(namespace="elsewhere", image_tag="v1.2.3")
    run = RunIdentity(
        run_id=printed["metadata"]["labels"]["ogdc/run-id"], recipe_path="recipes/sea-ice-conc"
    )
    assert printed == render_workflow(recipe, resolved_inputs(recipe), settings, run)


def test_yaml_by_default_and_overwrite(
    reference_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """viz-workflow with pvc output (as vendored its output is dataone, refused below)."""
    directory = tmp_path / "recipes" / "viz-workflow"
    shutil.copytree(reference_repo / "recipes" / "viz-workflow", directory)
    meta = directory / "meta.yml"
    meta.write_text(meta.read_text().replace('dataone_id: "TODO"', "type: pvc"))
    assert main(["render", str(directory), "--overwrite"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["kind"] == "Workflow"
    assert printed["metadata"]["annotations"]["ogdc/overwrite"] == "true"
    assert printed["spec"]["templates"][0]["name"] == "clear-output"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "is not a directory"),
        ({"recipes/bad/meta.yml": "name: bad_name!\n"}, "recipes/bad/meta.yml:1:"),
        (
            {
                "recipes/out/meta.yml": "name: out\nworkflow: {type: shell}\n"
                "input: {params: [{value: 'https://a.example/x.tif'}]}\n"
                "output: {type: dataone, dataone_id: x}\n",
                "recipes/out/recipe.sh": "true\n",
            },
            "recipes/out: dataone output is not supported yet",
        ),
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    target = tmp_path / "recipes" / ("bad" if "bad" in str(files) else "out")
    assert main(["render", str(target if files else tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ogdc-hooks: error: ") and expected in err
    assert err.count("\n") == 1


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ogdc_hooks",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_dataone_inputs_resolved_through_the_node(
    reference_repo: Path, dataone: tuple[FakeDataOne, str]
) -> None:
    fake, node = dataone
    fake.add_package(
        "resource_map_urn:uuid:cfe3fbb2-0585-40b5-8243-8fa47fcfeb9b", ["ct71_ODV.csv", "other.csv"]
    )
    code, out, err = await _cli(
        "render",
        str(reference_repo / "recipes" / "seal-tags"),
        "--format",
        "json",
        "--resolve",
        env={"DATAONE_NODE_URL": node},
    )
    assert code == 0, err
    [fetch] = [t for t in json.loads(out)["spec"]["templates"] if t["name"] == "fetch"]
    [script] = fetch["container"]["args"]
    assert script.count("wget ") == 1
    assert f"{node}/v2/object/urn%3Auuid%3A" in script


async def test_unreachable_dataone_node_is_one_line(reference_repo: Path) -> None:
    code, out, err = await _cli(
        "render",
        str(reference_repo / "recipes" / "seal-tags"),
        "--resolve",
        env={"DATAONE_NODE_URL": "http://127.0.0.1:9"},
    )
    assert code == 1 and out == ""
    assert err.startswith("ogdc-hooks: error: ") and "127.0.0.1:9" in err
    assert "the connection failed (Connection refused)" in err  # words, not aiohttp's text
    assert err.count("\n") == 1


@pytest.mark.parametrize("name", REFERENCE_NAMES)
async def test_render_is_offline_unless_asked_to_resolve(
    reference_repo: Path, dataone: tuple[FakeDataOne, str], name: str
) -> None:
    """Every real recipe renders with no network: DataONE inputs become marked placeholders
    (one with dataone output is refused as at submission, in one line, still offline)."""
    fake, node = dataone
    code, out, err = await _cli(
        "render",
        str(reference_repo / "recipes" / name),
        "--format",
        "json",
        env={"DATAONE_NODE_URL": node},
    )
    assert fake.requests == []
    meta = yaml.safe_load((reference_repo / "recipes" / name / "meta.yml").read_text())
    if "dataone_id" in meta.get("output", {}):
        assert (code, err.strip()) == (
            1,
            f"ogdc-hooks: error: recipes/{name}: dataone output is not supported yet",
        )
        return
    assert code == 0, err
    uses_dataone = any(param.get("type") == "dataone" for param in meta["input"]["params"])
    assert ("https://dataone.invalid/unresolved/" in out) is uses_dataone
    assert ("not resolved; the workflow lists an UNRESOLVED" in err) is uses_dataone
    assert json.loads(out)["kind"] == "Workflow"
