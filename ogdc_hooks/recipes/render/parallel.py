"""Shell recipes, parallel form: each command runs once per file, partitions side by side.

The workflow stays small however many files there are (docs/recipes.md, fix):

* the planning step (`fetch` for url/dataone inputs, `list-inputs` for
  pvc_mount inputs) splits the input files in order into partitions of
  `partition_size` and writes each partition's file list as a JSON manifest on
  the workflow PVC, `<workdir>/partition-manifests/cmd-0/partition-<n>.json`;
  the URLs reach it once, as a raw input artifact;
* each command is one DAG task expanded by Argo over the partitions
  (`withSequence` when the count is known at render time, `withParam` over the
  planning step's list of partition ids for pvc_mount inputs); a task gets
  only its partition id and manifest path, runs the command once per file with
  `$INPUT_FILE`, `$OUTPUT_FILE`, `$INPUT_DIR`, `$OUTPUT_DIR` set, and writes the
  manifest of its output files for the next stage (`cmd-<i+1>`, or `publish`
  after the last command);
* command i+1 depends on command i, so it waits for all of its partitions;
  `spec.parallelism` caps how many run at once;
* `collect-output` gathers the last stage's files into an artifact and removes
  the scratch directories, then the same publish step as the sequential form
  publishes them (0.3.0 never published parallel output).
"""

from __future__ import annotations

from string import Template
from typing import Any

from hera.workflows import models as m

from ogdc_hooks.recipes.render import embed
from ogdc_hooks.recipes.render.common import (
    ENTRYPOINT,
    Context,
    artifact,
    assemble,
    output_guard,
    python_script,
    template_name,
    workflow_mount,
)
from ogdc_hooks.recipes.render.inputs import claim_mounts, claim_volumes
from ogdc_hooks.recipes.render.partitions import manifest_path, over_partitions, plan_template
from ogdc_hooks.recipes.render.publish import PUBLISH, publish_template

KIND = "shell"
COLLECT = "collect-output"

_RUN_COMMAND = Template("""\
import json
import os
import subprocess
import sys
from pathlib import Path

COMMAND = $command
workdir = Path($workdir)
partition = "{{inputs.parameters.partition-id}}"
manifest = Path("{{inputs.parameters.manifest}}")
output_dir = workdir / ($output_prefix + partition)
output_dir.mkdir(parents=True, exist_ok=True)
for path in json.loads(manifest.read_text()):
    env = dict(
        os.environ,
        INPUT_FILE=path,
        INPUT_DIR=os.path.dirname(path),
        OUTPUT_DIR=str(output_dir),
        OUTPUT_FILE=str(output_dir / os.path.basename(path)),
    )
    print("processing", path, flush=True)
    code = subprocess.run(["sh", "-c", COMMAND], env=env).returncode
    if code != 0:
        sys.exit("ogdc: the command failed (exit code %d) on %s" % (code, path))
outputs = sorted(str(entry) for entry in output_dir.iterdir() if entry.is_file())
next_stage = workdir / "partition-manifests" / $next_stage
next_stage.mkdir(parents=True, exist_ok=True)
(next_stage / ("partition-" + partition + ".json")).write_text(json.dumps(outputs))
""")

_COLLECT = Template("""\
import json
import shutil
import sys
from pathlib import Path

workdir = Path($workdir)
output_dir = Path("/output_dir")
output_dir.mkdir(parents=True, exist_ok=True)
for manifest in sorted((workdir / "partition-manifests" / "publish").glob("partition-*.json")):
    for path in json.loads(manifest.read_text()):
        target = output_dir / Path(path).name
        if target.exists():
            sys.exit("ogdc: more than one partition produced " + target.name)
        shutil.copy2(path, target)
for scratch in [workdir / "inputs", *workdir.glob("cmd-*-partition-*")]:
    shutil.rmtree(scratch, ignore_errors=True)
""")


def _partition_size(ctx: Context) -> int:
    """Files per partition of a shell recipe: 1 unless the recipe says."""
    return ctx.recipe.meta.workflow.parallel.partition_size or 1


def command_template(ctx: Context, index: int, command: str, *, last: bool) -> m.Template:
    source = _RUN_COMMAND.substitute(
        command=embed.python_str(command),
        workdir=embed.python_str(ctx.workdir),
        output_prefix=embed.python_str(f"cmd-{index}-partition-"),
        next_stage=embed.python_str("publish" if last else f"cmd-{index + 1}"),
    )
    inputs = m.Inputs(parameters=[m.Parameter(name="partition-id"), m.Parameter(name="manifest")])
    mounts = [workflow_mount(), *claim_mounts(ctx)]
    return python_script(ctx, f"cmd-{index}", source, inputs=inputs, mounts=mounts)


def collect_template(ctx: Context) -> m.Template:
    return python_script(
        ctx,
        COLLECT,
        _COLLECT.substitute(workdir=embed.python_str(ctx.workdir)),
        outputs=m.Outputs(artifacts=[artifact("output-dir", "/output_dir/")]),
        mounts=[workflow_mount()],
    )


def _command_task(ctx: Context, index: int, plan: str, depends: str) -> m.DAGTask:
    return m.DAGTask(
        name=f"cmd-{index}",
        template=f"cmd-{index}",
        depends=depends,
        arguments=m.Arguments(
            parameters=[
                m.Parameter(name="partition-id", value="{{item}}"),
                m.Parameter(name="manifest", value=manifest_path(ctx, f"cmd-{index}")),
            ]
        ),
        **over_partitions(ctx, plan, _partition_size(ctx)),
    )


def render(ctx: Context) -> dict[str, Any]:
    parallel = ctx.recipe.meta.workflow.parallel
    guard = output_guard(ctx, uses_scratch=True)
    plan = plan_template(ctx, stage="cmd-0", partition_size=_partition_size(ctx))
    count = len(ctx.recipe.commands)
    commands = [
        command_template(ctx, i, cmd, last=i == count - 1)
        for i, cmd in enumerate(ctx.recipe.commands)
    ]
    collect = collect_template(ctx)
    publish = publish_template(ctx)
    tasks = []
    previous = None
    if guard is not None:
        previous = template_name(guard)
        tasks.append(m.DAGTask(name=previous, template=previous))
    plan_name = template_name(plan)
    tasks.append(m.DAGTask(name=plan_name, template=plan_name, depends=previous))
    previous = plan_name
    for index in range(count):
        tasks.append(_command_task(ctx, index, plan_name, previous))
        previous = f"cmd-{index}"
    tasks.append(m.DAGTask(name=COLLECT, template=COLLECT, depends=previous))
    tasks.append(
        m.DAGTask(
            name=PUBLISH,
            template=PUBLISH,
            depends=COLLECT,
            arguments=m.Arguments(
                artifacts=[
                    m.Artifact(
                        name="input-dir",
                        from_=f"{{{{tasks.{COLLECT}.outputs.artifacts.output-dir}}}}",
                    )
                ]
            ),
        )
    )
    main = m.Template(name=ENTRYPOINT, dag=m.DAGTemplate(tasks=tasks))
    templates = [*([guard] if guard else []), plan, *commands, collect, publish, main]
    return assemble(
        ctx,
        kind=KIND,
        templates=templates,
        volumes=claim_volumes(ctx),
        parallelism=parallel.max_parallelism or ctx.settings.max_parallel_limit,
    )
