"""Visualization recipes: the PDG pipeline as ogdc-runner 0.4.2 builds it, on our manifests.

A `main` DAG. After the output guard, `setup-config` creates the directories of
the enabled stages and writes the recipe's JSON configuration to
`<workdir>/config.json`; the planning step of `partitions` fetches (or lists)
the inputs and writes their partition manifests. Then:

* serial (`parallel.enabled` false): `run-viz-serial` runs every enabled stage
  in one pod over the one partition that holds all files;
* parallel: `stage-files` once per partition of `partition_size` files
  (default VIZ_WORKFLOW_DEFAULT_PARTITION_SIZE); `discover-staged-tiles` writes
  manifests of the staged tiles, over which `rasterize-max-z` and
  `create-3dtiles` fan out; for each zoom level from the highest but one down
  to the lowest, `discover-parents-z-<z>` then `create-composites-z-<z>`; last
  `discover-all-geotiffs` then `create-web-tiles`. A discovery step prints the
  partition ids it wrote, and Argo expands the next task over them
  (`withParam`); `spec.parallelism` is `max_parallelism` or
  OGDC_MAX_PARALLEL_LIMIT.

The `enable_*` flags and `z_range` of the configuration choose the stages, as
in ogdc-runner. The pdgworkflow steps run VIZ_WORKFLOW_IMAGE with the resources
of VIZ_WORKFLOW_RESOURCES, the setup steps VIZ_WORKFLOW_SETUP_IMAGE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from string import Template
from typing import Any

from hera.workflows import models as m

from ogdc_hooks.recipes.model import VizWorkflow
from ogdc_hooks.recipes.render import embed
from ogdc_hooks.recipes.render.common import (
    ENTRYPOINT,
    Context,
    assemble,
    container,
    output_guard,
    python_script,
    template_name,
    workflow_mount,
)
from ogdc_hooks.recipes.render.errors import UnsupportedWorkflow
from ogdc_hooks.recipes.render.inputs import claim_mounts, claim_volumes, pvc_params
from ogdc_hooks.recipes.render.partitions import manifest_path, over_partitions, plan_template
from ogdc_hooks.workflow_settings import StageResources

KIND = "visualization"
SETUP = "setup-config"
STAGE_INPUTS = "stage-files"
DESCRIPTION = "Parallel Viz Workflow (stage→rasterise→composite→web-tile→3d-tile)"
_DEFAULT_Z_RANGE = (0, 12)
_MANIFEST = "{{inputs.parameters.manifest}}"

# What every pdgworkflow step starts with: its configuration and a few helpers.
_PRELUDE = Template('''\
import json
import os
import sys
from pathlib import Path

from pdgworkflow import WorkflowManager

# stdout is the step's result for Argo: only the partition ids go there.
RESULT, sys.stdout = sys.stdout, sys.stderr
WORKDIR = Path($workdir)
os.chdir(WORKDIR)
manager = WorkflowManager(json.loads((WORKDIR / "config.json").read_text()))


def log(*words):
    print(*words, flush=True)


def each(items, action, verb):
    """`action` on every item, logged; the step fails on the first item that fails."""
    for number, item in enumerate(items, 1):
        log("[%d/%d]" % (number, len(items)), verb, item)
        try:
            action(item)
        except Exception as error:
            sys.exit("ogdc: %s %s failed: %s" % (verb, item, error))


def write_partitions(stage, items):
    """Manifests of `items` in partitions for the next step; their ids on stdout for Argo."""
    directory = WORKDIR / "partition-manifests" / stage
    directory.mkdir(parents=True, exist_ok=True)
    size = $partition_size
    partitions = [items[start:start + size] for start in range(0, len(items), size)]
    for number, partition in enumerate(partitions):
        (directory / ("partition-%d.json" % number)).write_text(json.dumps(partition))
    log("wrote", len(partitions), "partition manifests of", len(items), "items to", directory)
    print(json.dumps(list(range(len(partitions)))), file=RESULT)

''')

_READ_MANIFEST = f'''
def manifest():
    return json.loads(Path("{_MANIFEST}").read_text())

'''

# The body of each pdgworkflow step, after the prelude.
_BODIES = {
    "stage-files": "each(manifest(), manager.stage, 'staging')\n",
    "discover-staged-tiles": (
        "max_z = manager.config.get_max_z()\n"
        "staged = manager.tiles.get_filenames_from_dir('staged', z=max_z)\n"
        "write_partitions('staged-tiles', staged)\n"
    ),
    "rasterize-max-z": "each(manifest(), manager.rasterize_vector, 'rasterizing')\n",
    "create-3dtiles": "each(manifest(), manager.staged_to_3dtile, 'making 3D tiles of')\n",
    "discover-parent-tiles": (
        'z = int("{{inputs.parameters.z-level}}")\n'
        "children = manager.tiles.get_filenames_from_dir('geotiff', z=z + 1)\n"
        "parents = {manager.tiles.get_parent_tile(child) for child in children} - {None}\n"
        "paths = [\n"
        "    manager.tiles.path_from_tile(tile, base_dir='geotiff') for tile in sorted(parents)\n"
        "]\n"
        "write_partitions('parent-tiles-z-%d' % z, paths)\n"
    ),
    "create-composite-z": (
        "tiler = manager.init_raster_tiler()\n"
        "each(\n"
        "    manifest(),\n"
        "    lambda path: tiler.parent_geotiff_from_children(manager.tiles.tile_from_path(path)),\n"
        "    'compositing',\n"
        ")\n"
    ),
    "discover-all-geotiffs": (
        "write_partitions('geotiffs', manager.tiles.get_filenames_from_dir('geotiff'))\n"
    ),
    "create-web-tiles": (
        "tiler = manager.init_raster_tiler()\n"
        "each(manifest(), tiler.webtile_from_geotiff, 'making web tiles of')\n"
    ),
    "run-viz-serial": """\
config = manager.config
try:
    if config.is_stager_enabled():
        each(manifest(), manager.stage, "staging")
    if config.is_raster_enabled():
        manager.run_rasterization()
    if config.is_3dtiles_enabled():
        manager.run_3d_tiling()
    tiled = config.is_stager_enabled() or config.is_raster_enabled()
    if config.is_generate_wmtsCapabilities_enabled() and (tiled or config.is_web_tiles_enabled()):
        manager.generate_wmts_capabilities()
except Exception as error:
    sys.exit("ogdc: the visualization workflow failed: %s" % error)
""",
}
# Which VIZ_WORKFLOW_RESOURCES profile each step runs with (ogdc-runner 0.4.2's choice).
_PROFILES = {
    "stage-files": "stage",
    "create-web-tiles": "stage",
    "rasterize-max-z": "raster",
    "create-composite-z": "raster",
    "run-viz-serial": "raster",
    "create-3dtiles": "threedtile",
    "discover-staged-tiles": "discovery",
    "discover-parent-tiles": "discovery",
    "discover-all-geotiffs": "discovery",
}
_TAKES_MANIFEST = {
    "stage-files",
    "rasterize-max-z",
    "create-3dtiles",
    "create-composite-z",
    "create-web-tiles",
    "run-viz-serial",
}


@dataclass(frozen=True)
class VizConfig:
    """What the recipe's configuration says about the stages to render."""

    stager: bool
    raster: bool
    raster_parents: bool
    web_tiles: bool
    threedtiles: bool
    min_z: int
    max_z: int
    directories: tuple[str, ...]

    @classmethod
    def read(cls, text: str) -> VizConfig:
        config = json.loads(text)
        if not isinstance(config, dict):
            raise UnsupportedWorkflow("the visualization configuration must be a JSON object")
        flags = {
            name: bool(config.get(f"enable_{name}", True))
            for name in ("stager", "raster", "raster_parents", "web_tiles", "3dtiles")
        }
        z_range = config.get("z_range", list(_DEFAULT_Z_RANGE))
        if not (
            isinstance(z_range, list)
            and len(z_range) == 2
            and all(isinstance(z, int) and not isinstance(z, bool) and z >= 0 for z in z_range)
            and z_range[0] <= z_range[1]
        ):
            raise UnsupportedWorkflow(
                "z_range of the visualization configuration must be two whole numbers "
                "[lowest, highest] with 0 <= lowest <= highest"
            )
        wanted = {
            "dir_input": flags["stager"],
            "dir_staged": flags["stager"],
            "dir_geotiff": flags["raster"],
            "dir_web_tiles": flags["web_tiles"],
            "dir_3dtiles": flags["3dtiles"],
        }
        given = {"dir_3dtiles": "output/3dtiles", **config}
        directories = sorted(
            {_directory(key, given.get(key)) for key, on in wanted.items() if on} - {""}
        )
        return cls(
            stager=flags["stager"],
            raster=flags["raster"],
            raster_parents=flags["raster_parents"],
            web_tiles=flags["web_tiles"],
            threedtiles=flags["3dtiles"],
            min_z=z_range[0],
            max_z=z_range[1],
            directories=tuple(directories),
        )

    @property
    def composite_levels(self) -> list[int]:
        """Zoom levels whose tiles are composed from the level above, highest first."""
        return list(range(self.max_z - 1, self.min_z - 1, -1))


def _directory(key: str, value: Any) -> str:
    """A configured directory to create in the recipe's directory; "" when there is none.

    Absolute paths may name mounted input claims and are not created (as in
    ogdc-runner); a path climbing out of the recipe's directory is refused.
    """
    if not isinstance(value, str) or not value.strip("/") or value.startswith("/"):
        return ""
    path = value.rstrip("/")
    if ".." in path.split("/") or "{{" in path:
        raise UnsupportedWorkflow(
            f"{key} of the visualization configuration must stay inside the recipe's "
            f"directory and hold no '{{{{': {value!r}"
        )
    return path


def _resources(profile: StageResources) -> m.ResourceRequirements:
    return m.ResourceRequirements(
        requests={name: m.Quantity(quantity) for name, quantity in profile.requests},
        limits={name: m.Quantity(quantity) for name, quantity in profile.limits},
    )


def pdg_template(ctx: Context, name: str, partition_size: int) -> m.Template:
    """The pdgworkflow step `name` in VIZ_WORKFLOW_IMAGE with its resources."""
    source = _PRELUDE.substitute(
        workdir=embed.python_str(ctx.workdir), partition_size=partition_size
    )
    parameters = []
    if name in _TAKES_MANIFEST:
        source += _READ_MANIFEST
        parameters.append(m.Parameter(name="manifest"))
    if name == "discover-parent-tiles":
        parameters.append(m.Parameter(name="z-level"))
    return python_script(
        ctx,
        name,
        source + _BODIES[name],
        image=ctx.settings.viz_image,
        interpreter="python",
        inputs=m.Inputs(parameters=parameters) if parameters else None,
        mounts=[workflow_mount(), *claim_mounts(ctx)],
        resources=_resources(getattr(ctx.settings.viz_resources, _PROFILES[name])),
    )


def setup_template(ctx: Context, config: VizConfig) -> m.Template:
    directories = [ctx.workdir, *(f"{ctx.workdir}/{path}" for path in config.directories)]
    mkdirs = " && ".join(f"mkdir -p {embed.shell_word(path)}" for path in directories)
    write = f"{embed.shell_print(ctx.recipe.viz_config + chr(10))} > {ctx.workdir}/config.json"
    return container(
        ctx,
        "stage-viz-config",
        f"{mkdirs} && {write}",
        image=ctx.settings.setup_image,
        mounts=[workflow_mount("/mnt/workflow/")],
    )


@dataclass
class _Dag:
    """The tasks of `main`, in order, and the templates they use."""

    ctx: Context
    partition_size: int
    tasks: list[m.DAGTask] = field(default_factory=list)
    templates: dict[str, m.Template] = field(default_factory=dict)

    def add(
        self,
        name: str,
        template: m.Template | str,
        after: list[str],
        *,
        manifest: str | None = None,
        expand: dict[str, Any] | None = None,
        parameters: dict[str, str] | None = None,
    ) -> str:
        if isinstance(template, str):
            template = self.templates.get(template) or pdg_template(
                self.ctx, template, self.partition_size
            )
        self.templates.setdefault(template_name(template), template)
        values = {**({"manifest": manifest} if manifest else {}), **(parameters or {})}
        self.tasks.append(
            m.DAGTask(
                name=name,
                template=template_name(template),
                depends=" && ".join(after) or None,
                arguments=_parameters(values) if values else None,
                **(expand or {}),
            )
        )
        return name

    def add_template(self, template: m.Template, after: list[str]) -> str:
        """A task named as its template."""
        return self.add(template_name(template), template, after)


def _parameters(values: dict[str, str]) -> m.Arguments:
    return m.Arguments(
        parameters=[m.Parameter(name=name, value=value) for name, value in values.items()]
    )


@dataclass(frozen=True)
class _Partitions:
    """Partition manifests a fan-out reads: the step that wrote them, their stage, and how
    Argo expands a task over them."""

    task: str
    stage: str
    expand: dict[str, Any]


def _planned(dag: _Dag, after: list[str], partition_size: int | None) -> _Partitions:
    """The planning step (fetch or list the inputs, write their manifests)."""
    ctx = dag.ctx
    template = plan_template(
        ctx, stage=STAGE_INPUTS, partition_size=partition_size, image=ctx.settings.setup_image
    )
    task = dag.add_template(template, after)
    return _Partitions(task, STAGE_INPUTS, over_partitions(ctx, task, partition_size or 1))


def _discovered(
    dag: _Dag, name: str, template: str, after: list[str], stage: str, **parameters: str
) -> _Partitions:
    """A discovery step, which writes manifests for `stage` and prints their ids."""
    task = dag.add(name, template, after, parameters=parameters or None)
    return _Partitions(task, stage, {"with_param": f"{{{{tasks.{task}.outputs.result}}}}"})


def _fan_out(dag: _Dag, name: str, template: str, partitions: _Partitions) -> str:
    """`template` once per partition of `partitions`, after the step that wrote them."""
    return dag.add(
        name,
        template,
        [partitions.task],
        manifest=manifest_path(dag.ctx, partitions.stage),
        expand=partitions.expand,
    )


def _parallel_stages(dag: _Dag, config: VizConfig, setup: str) -> None:
    """ogdc-runner 0.4.2's parallel pipeline, each fan-out reading manifests on the PVC.

    Without the stager nothing is staged: claims' files are the tiles to rasterize (or,
    without rasterizing, the GeoTIFFs to make web tiles of), url inputs are not fetched."""
    from_claims = bool(pvc_params(dag.ctx.recipe))
    after = [setup]
    inputs = None
    if config.stager or from_claims:
        inputs = _planned(dag, after, dag.partition_size)
        after = [inputs.task]
    if inputs is not None and config.stager:
        after = [_fan_out(dag, STAGE_INPUTS, STAGE_INPUTS, inputs)]
    tiles = inputs if not config.stager else None
    if tiles is None and (config.raster or config.threedtiles):
        tiles = _discovered(
            dag, "discover-staged-tiles", "discover-staged-tiles", after, "staged-tiles"
        )
    raster = None
    if tiles is not None and config.raster:
        raster = _fan_out(dag, "rasterize-max-z", "rasterize-max-z", tiles)
    if tiles is not None and config.threedtiles:
        _fan_out(dag, "create-3dtiles", "create-3dtiles", tiles)
    anchor = raster or (tiles.task if tiles else None)
    if config.raster_parents and not (inputs is tiles and not config.raster):
        raster = _composites(dag, config, [anchor] if anchor else after) or raster
    if not config.web_tiles:
        return
    if inputs is not None and inputs is tiles and raster is None:
        _fan_out(dag, "create-web-tiles", "create-web-tiles", inputs)
        return
    geotiffs = _discovered(
        dag,
        "discover-all-geotiffs",
        "discover-all-geotiffs",
        [raster] if raster else after,
        "geotiffs",
    )
    _fan_out(dag, "create-web-tiles", "create-web-tiles", geotiffs)


def _composites(dag: _Dag, config: VizConfig, after: list[str]) -> str | None:
    """Each zoom level's tiles composed from the level above, highest level first."""
    last = None
    for z in config.composite_levels:
        parents = _discovered(
            dag,
            f"discover-parents-z-{z}",
            "discover-parent-tiles",
            after,
            f"parent-tiles-z-{z}",
            **{"z-level": str(z)},
        )
        last = _fan_out(dag, f"create-composites-z-{z}", "create-composite-z", parents)
        after = [last]
    return last


def render(ctx: Context) -> dict[str, Any]:
    workflow = ctx.recipe.meta.workflow
    assert isinstance(workflow, VizWorkflow)
    if ctx.recipe.meta.output.type != "pvc":
        raise UnsupportedWorkflow("visualization workflows support only pvc output")
    config = VizConfig.read(ctx.recipe.viz_config)
    parallel = workflow.parallel
    size = parallel.partition_size or ctx.settings.viz_default_partition_size
    dag = _Dag(ctx, size)
    guard = output_guard(ctx, uses_scratch=True)
    assert guard is not None  # pvc output always has a guard
    first = dag.add_template(guard, [])
    setup = dag.add(SETUP, setup_template(ctx, config), [first])
    if parallel.enabled:
        _parallel_stages(dag, config, setup)
    else:
        inputs = _planned(dag, [setup], None)
        dag.add(
            "run-viz-serial",
            "run-viz-serial",
            [inputs.task],
            manifest=f"{ctx.workdir}/partition-manifests/{STAGE_INPUTS}/partition-0.json",
        )
    main = m.Template(name=ENTRYPOINT, dag=m.DAGTemplate(tasks=dag.tasks))
    return assemble(
        ctx,
        kind=KIND,
        templates=[*dag.templates.values(), main],
        volumes=claim_volumes(ctx),
        parallelism=(parallel.max_parallelism or ctx.settings.max_parallel_limit)
        if parallel.enabled
        else None,
        labels={"workflows.argoproj.io/archive-strategy": "false"},
        annotations={"workflows.argoproj.io/description": DESCRIPTION},
    )
