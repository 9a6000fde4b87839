"""Visualization recipes: the PDG staging pipeline, as ogdc-runner builds it.

A `main` DAG: `stage-viz-config` creates the directories and writes the
recipe's JSON configuration under the recipe's directory on the workflow PVC;
`batching` downloads the single url input and splits it into GeoPackages of
`batch_size` features, printing their paths as a JSON list; `tiling` stages
every batch in parallel (`withParam` over that list), at most
`OGDC_MAX_PARALLEL_LIMIT` at once (the recipe's `parallel` block is ignored).
Staging and batching run after the output guard: they write into the
published directory.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import models as m

from ogdc_hooks.recipes.model import VizWorkflow
from ogdc_hooks.recipes.render import embed
from ogdc_hooks.recipes.render.common import (
    ENTRYPOINT,
    Context,
    artifact,
    assemble,
    container,
    output_guard,
    python_script,
    template_name,
    workflow_mount,
)
from ogdc_hooks.recipes.render.errors import UnsupportedWorkflow

KIND = "visualization"
STAGING_IMAGE = "ghcr.io/rushirajnenuji/viz-staging:latest"
CONFIG_IMAGE = "alpine:latest"
_DIRECTORIES = ("input", "batch", "output/staged", "output/geotiff", "output/3dtiles")
_RECIPE_DIR = "/mnt/workflow/{{inputs.parameters.recipe_id}}"

_BATCHING = f'''\
import json
import sys
from pathlib import Path

import geopandas as gpd

size = int("{{{{inputs.parameters.num_features}}}}")
batch_dir = Path("{_RECIPE_DIR}/batch")
frame = gpd.read_file("{_RECIPE_DIR}/input/input.gpkg")
chunks = []
for number, start in enumerate(range(0, len(frame), size)):
    target = batch_dir / ("chunk-%d.gpkg" % number)
    target.parent.mkdir(parents=True, exist_ok=True)
    print("writing chunk", number, "to", target, file=sys.stderr)
    frame[start:start + size].to_file(filename=target, driver="GPKG")
    chunks.append(str(target))
print(json.dumps(chunks))
'''

_TILING = f'''\
import json
import sys
from pathlib import Path

from pdgstaging import TileStager

config = json.loads(Path("{_RECIPE_DIR}/config.json").read_text())
chunk = "{{{{inputs.parameters.chunk-filepath}}}}"
print("staging", chunk, file=sys.stderr)
TileStager(config, check_footprints=False).stage(chunk)
print("staging done", file=sys.stderr)
'''


def _check_supported(ctx: Context) -> str:
    """The single url input's URL; other inputs or outputs cannot be visualized."""
    if ctx.recipe.meta.output.type != "pvc" or len(ctx.recipe.meta.input.params) != 1:
        raise UnsupportedWorkflow(
            "visualization workflows support only pvc output and a single url input"
        )
    if ctx.recipe.meta.input.params[0].type != "url" or len(ctx.inputs) != 1:
        raise UnsupportedWorkflow(
            "visualization workflows support only pvc output and a single url input"
        )
    return embed.url(ctx.inputs[0].url)


def stage_config_template(ctx: Context) -> m.Template:
    mkdirs = " && ".join(f"mkdir -p {ctx.workdir}/{directory}" for directory in _DIRECTORIES)
    write = f"{embed.shell_print(ctx.recipe.viz_config + chr(10))} > {ctx.workdir}/config.json"
    return container(
        ctx,
        "stage-viz-config",
        f"{mkdirs} && {write}",
        image=CONFIG_IMAGE,
        mounts=[workflow_mount("/mnt/workflow/")],
    )


def batching_template(ctx: Context) -> m.Template:
    return python_script(
        ctx,
        "batching",
        _BATCHING,
        image=STAGING_IMAGE,
        interpreter="python",
        inputs=m.Inputs(
            parameters=[
                m.Parameter(name="input_url"),
                m.Parameter(name="recipe_id"),
                m.Parameter(name="num_features"),
            ],
            artifacts=[
                artifact(
                    "batch-input",
                    f"{_RECIPE_DIR}/input/input.gpkg",
                    http=m.HTTPArtifact(url="{{inputs.parameters.input_url}}"),
                )
            ],
        ),
        outputs=m.Outputs(artifacts=[artifact("batch-output", f"{_RECIPE_DIR}/batch")]),
        mounts=[workflow_mount()],
    )


def tiling_template(ctx: Context) -> m.Template:
    return python_script(
        ctx,
        "tiling",
        _TILING,
        image=STAGING_IMAGE,
        interpreter="python",
        inputs=m.Inputs(
            parameters=[m.Parameter(name="chunk-filepath"), m.Parameter(name="recipe_id")]
        ),
        mounts=[workflow_mount()],
    )


def _parameters(**values: str) -> m.Arguments:
    return m.Arguments(
        parameters=[m.Parameter(name=name, value=value) for name, value in values.items()]
    )


def render(ctx: Context) -> dict[str, Any]:
    workflow = ctx.recipe.meta.workflow
    assert isinstance(workflow, VizWorkflow)
    input_url = _check_supported(ctx)
    guard = output_guard(ctx, uses_scratch=True)
    assert guard is not None  # pvc output always has a guard
    first = template_name(guard)
    stage, batching, tiling = (
        stage_config_template(ctx),
        batching_template(ctx),
        tiling_template(ctx),
    )
    tasks = [
        m.DAGTask(name=first, template=first),
        m.DAGTask(name="stage-viz-config", template="stage-viz-config", depends=first),
        m.DAGTask(
            name="batching",
            template="batching",
            depends=first,
            arguments=_parameters(
                input_url=input_url, recipe_id=ctx.id, num_features=str(workflow.batch_size)
            ),
        ),
        m.DAGTask(
            name="tiling",
            template="tiling",
            depends="stage-viz-config && batching",
            with_param="{{tasks.batching.outputs.result}}",
            arguments=_parameters(**{"chunk-filepath": "{{item}}", "recipe_id": ctx.id}),
        ),
    ]
    main = m.Template(name=ENTRYPOINT, dag=m.DAGTemplate(tasks=tasks))
    return assemble(
        ctx,
        kind=KIND,
        templates=[guard, stage, batching, tiling, main],
        parallelism=ctx.settings.max_parallel_limit,
        labels={"workflows.argoproj.io/archive-strategy": "false"},
        annotations={"workflows.argoproj.io/description": "Visualization workflow for OGDC"},
    )
