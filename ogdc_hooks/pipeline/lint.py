"""The Argo Server's own verdict on a rendered workflow, before a check says it is valid.

Our validation knows recipes; Argo's validator (`POST /api/v1/workflows/{ns}/lint`)
knows workflows: template and parameter references, names, fields our schema
copy allows. Every dry run is linted when it is prepared, and every workflow
just before it is created, so that a workflow Argo would refuse fails its check
with Argo's message. One request per recipe; an Argo outage is transient (the
job is retried), only Argo's verdict makes a recipe invalid.
"""

from __future__ import annotations

from typing import Any

from ogdc_hooks.pipeline.ports import WorkflowEngine
from ogdc_hooks.recipes.problems import Problem

LOCAL_ONLY = (
    "Only local validation was done: without an Argo Server (ARGO_WORKFLOWS_SERVICE_URL) "
    "the rendered workflow was not linted by Argo."
)
LINTED = "The Argo Server linted the rendered workflow and found no problem."


async def lint_problem(
    engine: WorkflowEngine, recipe: str, workflow: dict[str, Any]
) -> Problem | None:
    """The problem Argo finds in the workflow, or None when it accepts it. Argo knows no
    file or line of ours, so it is put at the start of the recipe's `meta.yml`."""
    message = await engine.lint(workflow)
    if message is None:
        return None
    path = f"{recipe}/meta.yml" if recipe else "meta.yml"
    return Problem(
        path, 1, 1, "", f"the Argo Server's lint refused the rendered workflow: {message}"
    )
