"""Shared pieces of the rendering tests (no tests here): recipes built in memory,
canned resolved inputs for the reference recipes, and how Kubernetes reads args."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from ogdc_hooks.recipes.load import load_recipe
from ogdc_hooks.recipes.model import InputFile, Recipe, RecipeMeta, RecipeOutput
from ogdc_hooks.recipes.render import RenderSettings, RunIdentity, render_workflow

NODE = "https://arcticdata.io/metacat/d1/mn"
RUN_ID = "0123456789abcdef0123456789abcdef"
SETTINGS = RenderSettings()
REFERENCE_NAMES = (
    "agb-plant",
    "agb-woodyplant",
    "agb-woodyplant-dominance",
    "greenland-ice-sheet",
    "sea-ice-conc",
    "seal-tags",
    "viz-workflow",
)


# viz-workflow of ogdc-recipes in the other forms 0.4.2 renders: `parallel`, settings of its
# config.json over the vendored ones, and whether it reads a claim instead of its url.
VIZ_VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    "serial": ({"enabled": False}, {}, False),
    "serial-claim": ({"enabled": False}, {}, True),
    "no-stager": ({"enabled": True, "partition_size": 3}, {"enable_stager": False}, False),
    "no-stager-claim": ({"enabled": True}, {"enable_stager": False}, True),
    "claim": ({"enabled": True, "max_parallelism": 2}, {"enable_web_tiles": False}, True),
    "no-parents": ({"enabled": True}, {"enable_raster_parents": False, "z_range": [0, 2]}, False),
}
WORKFLOW_CLAIM = "cephfs-qgnet-ogdc-workflow-pvc"


def write_viz_variant(reference_repo: Path, recipes: Path, name: str) -> Path:
    """The recipe directory of variant `name` of viz-workflow, written under `recipes`."""
    parallel, settings, claim = VIZ_VARIANTS[name]
    source = reference_repo / "recipes" / "viz-workflow"
    meta = yaml.safe_load((source / "meta.yml").read_text())
    meta["name"] = f"Viz {name}"
    meta["workflow"]["parallel"] = parallel
    meta["output"] = {"type": "pvc"}
    if claim:
        param = {"type": "pvc_mount", "claim_name": WORKFLOW_CLAIM, "path": "raw", "glob": "*"}
        meta["input"] = {"params": [param]}
    config = {**json.loads((source / "config.json").read_text()), **settings}
    directory = recipes / f"viz-{name}"
    directory.mkdir(parents=True)
    (directory / "meta.yml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return directory


def renderable(recipe: Recipe) -> Recipe:
    """`recipe`, with pvc output if its output is dataone: such a recipe validates but
    its submission is refused ("dataone output is not supported yet"); viz-workflow of
    ogdc-recipes is one (`dataone_id` without `type`), and is rendered as pvc here."""
    if recipe.meta.output.type != "dataone":
        return recipe
    return dataclasses.replace(
        recipe, meta=recipe.meta.model_copy(update={"output": RecipeOutput()})
    )


def load_reference(repo: Path, name: str) -> Recipe:
    """The vendored recipe `name` of ogdc-recipes, ready to render (see `renderable`)."""
    return renderable(load_recipe(repo, f"recipes/{name}"))


def run_identity(**fields: Any) -> RunIdentity:
    values: dict[str, Any] = {"run_id": RUN_ID, "recipe_path": "recipes/test"}
    values.update(fields)
    return RunIdentity(**values)


def make_recipe(
    name: str = "Test recipe",
    *,
    params: list[dict[str, Any]] | None = None,
    output: str = "pvc",
    commands: tuple[str, ...] = ("cp /input_dir/* /output_dir/",),
    parallel: dict[str, Any] | None = None,
    viz: dict[str, Any] | None = None,
    viz_config: str = "{}",
) -> Recipe:
    """A validated recipe built in memory (no files), as loading would produce it."""
    workflow: dict[str, Any] = (
        {"type": "visualization", **viz}
        if viz is not None
        else {
            "type": "shell",
            **({"parallel": parallel} if parallel is not None else {}),
        }
    )
    meta = RecipeMeta.model_validate(
        {
            "name": name,
            "workflow": workflow,
            "input": {"params": params or [{"type": "url", "value": url_of(0)}]},
            "output": {"type": output},
        }
    )
    return Recipe(
        directory="recipes/test",
        meta_path="recipes/test/meta.yml",
        meta=meta,
        commands=commands if viz is None else (),
        viz_config=viz_config,
    )


def url_of(index: int) -> str:
    return f"https://data.example.org/ogdc/input-{index:05d}.tif"


def url_params(count: int) -> list[dict[str, Any]]:
    return [{"type": "url", "value": url_of(i)} for i in range(count)]


def url_inputs(count: int) -> list[InputFile]:
    return [InputFile(url_of(i), url_of(i).rsplit("/", 1)[-1]) for i in range(count)]


def object_url(identifier: str) -> str:
    return f"{NODE}/v2/object/{quote(identifier, safe='')}"


def canned_objects(dataset: str, pattern: str | None) -> list[tuple[str, str]]:
    """What DataONE would answer for a reference recipe's param: (url, filename)s."""
    names = (
        [f"percent_gris_rcp{rcp}.nc" for rcp in ("26", "45", "85")]
        if pattern and "*" in pattern
        else [pattern or "data.csv"]
    )
    return [(object_url(f"urn:uuid:{dataset}/{name}"), name) for name in names]


def resolved_inputs(recipe: Recipe) -> list[InputFile]:
    """The recipe's inputs as `resolve_inputs` would give them, DataONE answered from cans."""
    files: list[InputFile] = []
    for param in recipe.meta.input.params:
        if param.type == "url":
            files.append(InputFile(param.value, param.value.rsplit("/", 1)[-1]))
        elif param.type == "dataone":
            files += [
                InputFile(u, n) for u, n in canned_objects(param.dataset_identifier, param.filename)
            ]
    return files


def render(recipe: Recipe, inputs: list[InputFile] | None = None, **run: Any) -> dict[str, Any]:
    files = resolved_inputs(recipe) if inputs is None else inputs
    return render_workflow(recipe, files, SETTINGS, run_identity(**run))


def k8s_expand(arg: str) -> str:
    """What the container receives for a `command`/`args` string (no env vars defined):
    Kubernetes turns `$$` into `$` and keeps unresolvable `$(NAME)` as written."""
    return re.sub(r"\$(\$?)", lambda match: "$", arg)


def templates(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {template["name"]: template for template in manifest["spec"]["templates"]}


def shell_script(template: dict[str, Any]) -> str:
    """The script a `sh -c` container template runs, as the container receives it."""
    container = template["container"]
    assert container["command"] == ["sh", "-c"]
    [arg] = container["args"]
    return k8s_expand(arg)


def recipe_digest(directory: Path) -> str:
    """SHA-256 over a recipe directory's file names and contents, to tell when it changed."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
