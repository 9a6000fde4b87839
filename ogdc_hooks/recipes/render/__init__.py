"""Rendering recipes into Argo Workflow manifests (docs/recipes.md "Workflows submitted to Argo").

`render_workflow` is pure: the same recipe, inputs, settings and run give the
same dict; nothing is read from the environment, the network or the disk.
"""

from ogdc_hooks.recipes.render.errors import (
    MissingInputs,
    RenderError,
    UnsupportedOutput,
    UnsupportedWorkflow,
    WorkflowTooLarge,
)
from ogdc_hooks.recipes.render.settings import RenderSettings, RunIdentity
from ogdc_hooks.recipes.render.workflow import render_workflow

__all__ = [
    "MissingInputs",
    "RenderError",
    "RenderSettings",
    "RunIdentity",
    "UnsupportedOutput",
    "UnsupportedWorkflow",
    "WorkflowTooLarge",
    "render_workflow",
]
