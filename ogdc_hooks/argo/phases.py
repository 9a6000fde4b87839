"""What an Argo workflow's status means for our run: pure functions over the workflow dict.

Argo reports `status.phase` (Pending, Running, Succeeded, Failed, Error, or
nothing before the controller has seen the workflow) and one node per step in
`status.nodes`. The pipeline only needs our `RunState`, Argo's message and,
on failure, which steps failed and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ogdc_hooks.runstate import FailedStep, Partitions, Progress, RunState

__all__ = ["FailedStep", "Progress", "output_artifact_node", "partitions_of", "progress_of"]

_STATES = {
    "Pending": RunState.SUBMITTED,
    "Running": RunState.RUNNING,
    "Succeeded": RunState.SUCCEEDED,
    "Failed": RunState.FAILED,
    "Error": RunState.FAILED,
}
_STEP_TYPES = frozenset({"Pod", "Container"})
_FAILED_PHASES = frozenset({"Failed", "Error"})


_STEPS = re.compile(r"\d{1,9}/\d{1,9}")


def progress_of(workflow: Mapping[str, Any]) -> Progress:
    """Map a workflow (as the Argo Server returns it) to our state, message and failed steps.

    An unknown or missing phase counts as submitted: the controller has not
    picked the workflow up yet, or a newer Argo invented a phase we do not know.
    """
    status = _mapping(workflow.get("status"))
    state = _STATES.get(str(status.get("phase") or ""), RunState.SUBMITTED)
    message = status.get("message") or None
    failed = _failed_steps(_mapping(status.get("nodes"))) if state is RunState.FAILED else ()
    steps = status.get("progress")
    counted = steps if isinstance(steps, str) and _STEPS.fullmatch(steps) else None
    return Progress(state, str(message) if message else None, failed, counted)


def output_artifact_node(workflow: Mapping[str, Any], artifact_name: str) -> str | None:
    """The id of the node whose outputs hold `artifact_name` (e.g. `published_zip`), if any."""
    for node_id, node in _mapping(_mapping(workflow.get("status")).get("nodes")).items():
        outputs = _mapping(_mapping(node).get("outputs"))
        for artifact in outputs.get("artifacts") or ():
            if _mapping(artifact).get("name") == artifact_name:
                return str(node_id)
    return None


def _failed_steps(nodes: Mapping[str, Any]) -> tuple[FailedStep, ...]:
    failed = [
        _mapping(node)
        for node in nodes.values()
        if _mapping(node).get("type") in _STEP_TYPES
        and _mapping(node).get("phase") in _FAILED_PHASES
    ]
    failed.sort(key=lambda node: (str(node.get("startedAt") or ""), str(node.get("name") or "")))
    return tuple(
        FailedStep(
            name=str(node.get("displayName") or node.get("name") or node.get("id") or "?"),
            message=str(node.get("message") or ""),
        )
        for node in failed
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an empty one: Argo omits empty fields."""
    return value if isinstance(value, Mapping) else {}


# Argo names each task a fan-out expands `<task>(<index>:<item>)` (argo-workflows
# `workflow/controller/dag.go`, `expandTask`; steps alike in `steps.go`).
_EXPANDED = re.compile(r"^(?P<task>.+)\((?P<index>\d+):(?P<item>.*)\)$")
_DONE_PHASES = frozenset({"Succeeded", "Skipped", "Omitted"})


def partitions_of(workflow: Mapping[str, Any]) -> list[Partitions]:
    """Per fan-out step of a workflow, its expanded tasks done, running (or pending) and
    failed, from `status.nodes`."""
    counts: dict[str, list[int]] = {}
    for node in _mapping(_mapping(workflow.get("status")).get("nodes")).values():
        if not isinstance(node, Mapping):
            continue
        found = _EXPANDED.match(str(node.get("displayName", "")))
        if found is None:
            continue
        phase = node.get("phase")
        slot = 0 if phase in _DONE_PHASES else 2 if phase in _FAILED_PHASES else 1
        counts.setdefault(found["task"], [0, 0, 0])[slot] += 1
    return [Partitions(step, *figures) for step, figures in sorted(counts.items())]
