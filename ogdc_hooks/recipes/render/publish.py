"""The last step: publish the final files as the recipe's `output.type` says.

`pvc`: copied into the recipe's directory (`/<recipe-id>/`) on the workflow PVC.
`temporary`: zipped to `<recipe-id>.zip`, an output artifact kept uncompressed
(`archive: none`) so it can be downloaded as it is. `dataone`: not supported.
"""

from __future__ import annotations

from hera.workflows import models as m

from ogdc_hooks.recipes.render.common import Context, artifact, container, workflow_mount
from ogdc_hooks.recipes.render.errors import UnsupportedOutput

PUBLISH = "publish-data"
PUBLISHED_ZIP = "published_zip"  # the output artifact of a `temporary` output (docs/recipes.md)
INPUT_DIR = "/input_dir/"


def check_output(ctx: Context) -> None:
    if ctx.recipe.meta.output.type == "dataone":
        raise UnsupportedOutput("dataone output is not supported yet")


def publish_template(ctx: Context) -> m.Template:
    """Publishes the files of its `input-dir` artifact."""
    check_output(ctx)
    inputs = m.Inputs(artifacts=[artifact("input-dir", INPUT_DIR)])
    if ctx.recipe.meta.output.type == "pvc":
        return container(
            ctx,
            PUBLISH,
            "rsync --progress /input_dir/* /output_dir/",
            inputs=inputs,
            mounts=[workflow_mount("/output_dir/", sub_path=ctx.id)],
        )
    zip_path = f"/output_dir/{ctx.id}.zip"
    return container(
        ctx,
        PUBLISH,
        f"mkdir -p /output_dir/ && cd /input_dir/ && zip -r {zip_path} ./*",
        inputs=inputs,
        outputs=m.Outputs(
            artifacts=[
                artifact(PUBLISHED_ZIP, zip_path, archive=m.ArchiveStrategy(none=m.NoneStrategy()))
            ]
        ),
    )
