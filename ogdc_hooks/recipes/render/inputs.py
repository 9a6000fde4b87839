"""Getting a recipe's input files into the workflow: checks on the resolved files,
the fetch step of sequential workflows, the list of files handed to the parallel
planning step, and the read-only mounts of `pvc_mount` claims."""

from __future__ import annotations

import re
from collections.abc import Sequence
from string import Template

from hera.workflows import models as m

from ogdc_hooks.recipes.model import InputFile, PvcMountInput, Recipe, safe_filename
from ogdc_hooks.recipes.render import embed
from ogdc_hooks.recipes.render.common import (
    WORKFLOW_VOLUME,
    Context,
    artifact,
    container,
    python_script,
)
from ogdc_hooks.recipes.render.errors import MissingInputs, UnsupportedWorkflow

DATA_MOUNT = "/mnt/data"
OUTPUT_DIR = "/output_dir/"
_ENCODED = re.compile(r"[%{}\x00-\x1f\x7f]")

# Python that sets `files`: every regular file matching each (directory, glob) of
# SOURCES, in order, sorted within a source; shell-like globbing (`**` recurses).
_LIST_PVC_FILES = Template("""\
import glob
import os
import sys

SOURCES = $sources
files = []
for directory, pattern in SOURCES:
    if not os.path.isdir(directory):
        sys.exit("ogdc: input directory " + directory + " does not exist")
    matches = [
        os.path.join(directory, match)
        for match in sorted(glob.glob(pattern, root_dir=directory, recursive=True))
        if os.path.isfile(os.path.join(directory, match))
    ]
    if not matches:
        sys.exit("ogdc: no file matches " + pattern + " in " + directory)
    files.extend(matches)
""")

_COPY_FILES = """
import shutil

os.makedirs("/output_dir", exist_ok=True)
for path in files:
    target = os.path.join("/output_dir", os.path.basename(path))
    if os.path.exists(target):
        sys.exit("ogdc: two input files are named " + os.path.basename(path))
    shutil.copy2(path, target)
print("copied", len(files), "input files")
"""


def check_inputs(recipe: Recipe, inputs: Sequence[InputFile]) -> None:
    """Refuse inputs that do not fit the recipe: none for url/dataone params, unusable
    names or URLs, or files given to a recipe that only reads PVCs."""
    kinds = {param.type for param in recipe.meta.input.params}
    if "pvc_mount" in kinds and kinds != {"pvc_mount"}:
        raise UnsupportedWorkflow("pvc_mount inputs cannot be mixed with url or dataone inputs")
    if kinds == {"pvc_mount"}:
        if inputs:
            raise MissingInputs(
                "input files were given, but the recipe reads only pvc_mount inputs"
            )
        return
    if not inputs:
        raise MissingInputs(
            "the recipe's url/dataone inputs resolved to no input files "
            "(dataone inputs must be resolved before rendering)"
        )
    for file in inputs:
        if not file.url.startswith(("http://", "https://")) or any(
            char.isspace() or ord(char) < 32 for char in file.url
        ):
            raise MissingInputs(f"input URL {file.url!r} is not an absolute http(s) URL")
        try:
            safe_filename(file.filename)
        except ValueError as err:
            raise MissingInputs(f"input file of {file.url}: {err}") from None


def pvc_params(recipe: Recipe) -> list[PvcMountInput]:
    return [param for param in recipe.meta.input.params if isinstance(param, PvcMountInput)]


def claim_volume_names(ctx: Context) -> dict[str, str]:
    """One volume per claim, in order of first use; the workflow PVC reuses its volume."""
    names: dict[str, str] = {}
    for param in pvc_params(ctx.recipe):
        if param.claim_name not in names:
            own = param.claim_name == ctx.settings.workflow_pvc
            names[param.claim_name] = WORKFLOW_VOLUME if own else f"input-pvc-{len(names)}"
    return names


def claim_volumes(ctx: Context) -> list[m.Volume]:
    return [
        m.Volume(
            name=volume,
            persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(
                claim_name=claim, read_only=True
            ),
        )
        for claim, volume in claim_volume_names(ctx).items()
        if volume != WORKFLOW_VOLUME
    ]


def claim_mounts(ctx: Context) -> list[m.VolumeMount]:
    """Each claim read-only at `/mnt/data/<claim_name>/`."""
    return [
        m.VolumeMount(name=volume, mount_path=f"{DATA_MOUNT}/{claim}/", read_only=True)
        for claim, volume in claim_volume_names(ctx).items()
    ]


def list_pvc_files_source(ctx: Context) -> str:
    """Python listing the files of the recipe's pvc_mount inputs (sets `files`)."""
    sources = [
        [f"{DATA_MOUNT}/{param.claim_name}/{param.path.strip('/')}".rstrip("/"), param.glob]
        for param in pvc_params(ctx.recipe)
    ]
    literal = (
        "["
        + ", ".join(
            f"({embed.python_str(directory)}, {embed.python_str(pattern)})"
            for directory, pattern in sources
        )
        + "]"
    )
    return _LIST_PVC_FILES.substitute(sources=literal)


def fetch_template(ctx: Context) -> m.Template:
    """The sequential fetch step: inputs into the `output-dir` artifact."""
    outputs = m.Outputs(artifacts=[artifact("output-dir", OUTPUT_DIR)])
    if pvc_params(ctx.recipe):
        source = list_pvc_files_source(ctx) + _COPY_FILES
        return python_script(ctx, "fetch", source, outputs=outputs, mounts=claim_mounts(ctx))
    fetches = " && ".join(
        f"wget --content-disposition -P {OUTPUT_DIR} {embed.shell_word(embed.url(file.url))}"
        for file in ctx.inputs
    )
    return container(ctx, "fetch", f"mkdir -p {OUTPUT_DIR} && {fetches}", outputs=outputs)


def input_list(inputs: Sequence[InputFile]) -> str:
    """The files to fetch, one line each: `<url>` or `<url>\\t<percent-encoded name>`.

    The name is left out when it is the URL's last segment, which keeps the list
    (and so the workflow) small; `%`, braces and control characters in names are
    percent-encoded, so the list holds no `{{` for Argo.
    """
    lines = []
    for file in inputs:
        address = embed.url(file.url)
        if file.filename == address.rsplit("/", 1)[-1]:
            lines.append(address)
        else:
            lines.append(f"{address}\t{_percent_encode(file.filename)}")
    return "\n".join(lines) + "\n"


def _percent_encode(name: str) -> str:
    return _ENCODED.sub(lambda match: f"%{ord(match[0]):02X}", name)
