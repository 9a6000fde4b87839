"""Partition manifests on the workflow PVC, shared by parallel shell and visualization recipes.

The planning step (`fetch` for url/dataone inputs, `list-inputs` for
pvc_mount inputs) splits the input files in order into partitions and writes
each partition's file list as a JSON manifest,
`<workdir>/partition-manifests/<stage>/partition-<n>.json`; the URLs reach it
once, as a raw input artifact. A task then runs once per partition with only
the partition id and its manifest's path, so the workflow stays small however
many files there are.
"""

from __future__ import annotations

from string import Template
from typing import Any

from hera.workflows import models as m

from ogdc_hooks.recipes.render import embed
from ogdc_hooks.recipes.render.common import Context, artifact, python_script, workflow_mount
from ogdc_hooks.recipes.render.errors import MissingInputs
from ogdc_hooks.recipes.render.inputs import (
    claim_mounts,
    input_list,
    list_pvc_files_source,
    pvc_params,
)

# Paths inside the planning container, not on this host.
INPUT_LIST = "/tmp/ogdc/inputs.txt"  # noqa: S108
PARTITIONS_FILE = "/tmp/ogdc/partitions.json"  # noqa: S108
_FETCH_FILES = Template("""\
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

inputs_dir = Path($workdir) / "inputs"
inputs_dir.mkdir(parents=True, exist_ok=True)
files = []
for line in Path($input_list).read_text().splitlines():
    url, _, name = line.partition("\\t")
    target = inputs_dir / (unquote(name) if name else url.rsplit("/", 1)[-1])
    print("fetching", url, "to", target, flush=True)
    if subprocess.run(["wget", "-q", "-O", str(target), url]).returncode != 0:
        sys.exit("ogdc: could not fetch " + url)
    files.append(str(target))
""")

_WRITE_MANIFESTS = Template("""
import json
from pathlib import Path

stage = Path($workdir) / "partition-manifests" / $stage
stage.mkdir(parents=True, exist_ok=True)
size = $partition_size
partitions = [files[start:start + size] for start in range(0, len(files), size)]
for number, partition in enumerate(partitions):
    (stage / ("partition-%d.json" % number)).write_text(json.dumps(partition))
Path($partitions_file).parent.mkdir(parents=True, exist_ok=True)
Path($partitions_file).write_text(json.dumps(list(range(len(partitions)))))
print("wrote", len(partitions), "partition manifests to", stage)
""")


def _check_unique_names(ctx: Context) -> None:
    """Parallel inputs are saved by name in one directory: two with one name would clash."""
    seen: set[str] = set()
    for file in ctx.inputs:
        if file.filename in seen:
            raise MissingInputs(f"two input files would both be saved as {file.filename!r}")
        seen.add(file.filename)


def plan_template(
    ctx: Context, *, stage: str, partition_size: int | None, image: str | None = None
) -> m.Template:
    """Fetch (url/dataone) or list (pvc_mount) the inputs and write the partition manifests
    of `stage`; `partition_size` None puts every file in one partition."""
    manifests = _WRITE_MANIFESTS.substitute(
        workdir=embed.python_str(ctx.workdir),
        stage=embed.python_str(stage),
        partition_size=partition_size or "max(len(files), 1)",
        partitions_file=embed.python_str(PARTITIONS_FILE),
    )
    if pvc_params(ctx.recipe):
        return python_script(
            ctx,
            "list-inputs",
            list_pvc_files_source(ctx) + manifests,
            image=image,
            outputs=m.Outputs(
                parameters=[
                    m.Parameter(name="partitions", value_from=m.ValueFrom(path=PARTITIONS_FILE))
                ]
            ),
            mounts=[workflow_mount(), *claim_mounts(ctx)],
        )
    _check_unique_names(ctx)
    fetch = _FETCH_FILES.substitute(
        workdir=embed.python_str(ctx.workdir), input_list=embed.python_str(INPUT_LIST)
    )
    return python_script(
        ctx,
        "fetch",
        fetch + manifests,
        image=image,
        inputs=m.Inputs(
            artifacts=[
                artifact("input-list", INPUT_LIST, raw=m.RawArtifact(data=input_list(ctx.inputs)))
            ]
        ),
        mounts=[workflow_mount()],
    )


def over_partitions(ctx: Context, plan: str, partition_size: int) -> dict[str, Any]:
    """How a task runs once per partition the plan step wrote, `{{item}}` being its id:
    `withSequence` when the count is known now, else `withParam` over the plan's list."""
    if pvc_params(ctx.recipe):
        return {"with_param": f"{{{{tasks.{plan}.outputs.parameters.partitions}}}}"}
    count = -(-len(ctx.inputs) // partition_size)
    return {"with_sequence": m.Sequence(count=m.IntOrString(str(count)))}


def manifest_path(ctx: Context, stage: str) -> str:
    """The manifest of the partition `{{item}}` of `stage`, on the workflow PVC."""
    return f"{ctx.workdir}/partition-manifests/{stage}/partition-{{{{item}}}}.json"
