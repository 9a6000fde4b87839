"""`render_workflow`: a recipe, its resolved inputs, the settings and the run, to the
Argo Workflow manifest that would be submitted. Pure: no I/O, no global state."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ogdc_hooks.recipes.model import InputFile, Recipe, ShellWorkflow
from ogdc_hooks.recipes.render import parallel, sequential, visualization
from ogdc_hooks.recipes.render.common import Context
from ogdc_hooks.recipes.render.errors import UnsupportedWorkflow, WorkflowTooLarge
from ogdc_hooks.recipes.render.inputs import check_inputs
from ogdc_hooks.recipes.render.publish import check_output
from ogdc_hooks.recipes.render.settings import RenderSettings, RunIdentity

_RECIPE_ID = re.compile(r"[a-z0-9.-]+")


def render_workflow(
    recipe: Recipe,
    inputs: Sequence[InputFile],
    settings: RenderSettings,
    run: RunIdentity,
) -> dict[str, Any]:
    """The Workflow manifest (`apiVersion`, `kind`, `metadata`, `spec`) for `recipe`.

    `inputs` are the recipe's url and dataone files, resolved, in order
    (pvc_mount inputs come from the recipe itself). Raises a `RenderError`
    subclass, with one sentence saying why, when the recipe cannot run or its
    workflow would be larger than Argo can store.
    """
    workflow = _render(recipe, inputs, settings, run)
    _check_size(workflow, settings)
    return workflow


def _check_size(workflow: dict[str, Any], settings: RenderSettings) -> None:
    """Argo keeps a workflow as one Kubernetes object in etcd (1.5 MiB a request at most)."""
    templates = len(workflow["spec"]["templates"])
    if templates > settings.max_templates:
        raise WorkflowTooLarge(
            f"the workflow would have {templates} templates, more than the limit of "
            f"{settings.max_templates} (OGDC_MAX_WORKFLOW_TEMPLATES); use fewer commands"
        )
    size = len(json.dumps(workflow, separators=(",", ":")).encode())
    if size > settings.max_bytes:
        raise WorkflowTooLarge(
            f"the workflow would be {size} bytes, more than the limit of {settings.max_bytes} "
            "(OGDC_MAX_WORKFLOW_BYTES) below what Argo can store; use fewer or shorter "
            "commands, or fewer inputs"
        )


def _render(
    recipe: Recipe, inputs: Sequence[InputFile], settings: RenderSettings, run: RunIdentity
) -> dict[str, Any]:
    ctx = Context(recipe=recipe, inputs=tuple(inputs), settings=settings, run=run)
    check_output(ctx)
    if not _RECIPE_ID.fullmatch(recipe.id) or recipe.id in (".", ".."):
        raise UnsupportedWorkflow(
            f"the recipe id {recipe.id!r} cannot name a directory on the workflow PVC"
        )
    check_inputs(recipe, ctx.inputs)
    workflow = recipe.meta.workflow
    if not isinstance(workflow, ShellWorkflow):
        return visualization.render(ctx)
    if not recipe.commands:
        raise UnsupportedWorkflow(f"{workflow.sh_file} has no commands to run")
    if workflow.parallel.enabled:
        return parallel.render(ctx)
    return sequential.render(ctx)
