"""Why an Argo workflow failed, from its failed nodes' status; pure.

What the classes match is what Argo's controller writes into `status.nodes[*].message`
(argo-workflows `workflow/controller/operator.go`):

- `inferFailedReason`: a failed main container is `main: <reason> (exit code N)`
  (`main: OOMKilled (exit code 137)`, `main: Error (exit code 2)`); a pod that failed
  before its container started is `Pod failed before main container starts due to
  <reason>: <message>` (`ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`); a pod
  with a message of its own (Kubernetes eviction: "The node was low on resource: memory.
  ...", the kubelet's `activeDeadlineSeconds`: "Pod was active on the node longer than the
  specified deadline") has that message. Older controllers wrote `failed with exit code N`.
- `podReconciliation`: a pod that vanished is `pod deleted`; `failSuspendedAndPendingNodes
  AfterDeadline` / `exec_control.go`: `Step exceeded its deadline`.

The pod of a node is named as `workflow/util/pod_name.go` `GeneratePodName` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ogdc_hooks.failure import MAX_STEPS

POD_NAME_FORMAT = "workflows.argoproj.io/pod-name-format"  # v1: node id; v2 (default): hashed
_STEP_TYPES = frozenset({"Pod", "Container"})
_FAILED = frozenset({"Failed", "Error"})
_EXIT_CODE = re.compile(r"exit code (\d+)")
_FETCH_STEP = re.compile(r"(?:^|-)fetch(?:$|[-(])")


@dataclass(frozen=True)
class Classification:
    """A kind of failure, one line of why and one of what to try."""

    name: str
    explanation: str
    advice: str


OOM = Classification(
    "out of memory (OOMKilled)",
    "The step used more memory than its limit, so Kubernetes killed it.",
    "Process the data in smaller pieces (a parallel recipe with smaller partitions), or ask "
    "an operator for a larger memory limit.",
)
IMAGE_PULL = Classification(
    "image pull failure",
    "Kubernetes could not pull the step's container image, so the step never started.",
    "Check that the image and its tag exist and can be pulled without credentials; if they "
    "can, the registry was unreachable: run the recipe again later.",
)
DEADLINE = Classification(
    "deadline exceeded",
    "The step ran longer than it was allowed to, so it was stopped.",
    "Make the step faster or split it into smaller steps, or ask an operator for a longer "
    "deadline.",
)
POD_DELETED = Classification(
    "pod deleted or evicted",
    "The step's pod was deleted or evicted from its node before it finished (node pressure, "
    "a node restart, or a person deleting it).",
    "This is rarely the recipe's fault: run it again. If it keeps happening, the step may be "
    "using more memory or disk than it requests.",
)
INPUT_DOWNLOAD = Classification(
    "input download failed",
    "Fetching the recipe's inputs failed.",
    "Check that every input URL in meta.yml opens from outside your network and that its "
    "server is up, then push again.",
)
UNKNOWN = Classification(
    "failed", "Argo gave no reason.", "Read the last lines of the log below, or open the workflow."
)


def exit_code(code: int) -> Classification:
    return Classification(
        f"exit code {code}",
        f"The step's command ended with exit code {code}.",
        "Read the last lines of its log below; run the command locally on the same inputs to "
        "reproduce it.",
    )


def classify_node(node: Mapping[str, Any]) -> Classification:
    """The class of one failed node, from its message and which step it is."""
    message = str(node.get("message") or "")
    lowered = message.lower()
    if "oomkilled" in lowered:
        return OOM
    if any(reason in message for reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImage")):
        return IMAGE_PULL
    if "deadline" in lowered or "max duration limit exceeded" in lowered:
        return DEADLINE
    if lowered == "pod deleted" or "evicted" in lowered or "node was low on resource" in lowered:
        return POD_DELETED
    if is_fetch_step(node):
        return INPUT_DOWNLOAD
    if match := _EXIT_CODE.search(message):
        return exit_code(int(match[1]))
    if message:
        return Classification("failed", message, UNKNOWN.advice)
    return UNKNOWN


def is_fetch_step(node: Mapping[str, Any]) -> bool:
    """Whether the node is a recipe's input download (`fetch` in recipes/render/inputs.py)."""
    names = (node.get("displayName"), node.get("templateName"))
    return any(_FETCH_STEP.search(str(name)) for name in names if name)


def with_fetch_message(classification: Classification, log_tail: Sequence[str]) -> Classification:
    """An input download's explanation ends with the fetch step's own last word (wget's)."""
    last = next((line.strip() for line in reversed(log_tail) if line.strip()), "")
    if classification is not INPUT_DOWNLOAD or not last:
        return classification
    return Classification(
        classification.name, f"{classification.explanation} {last}", classification.advice
    )


def failed_nodes(workflow: Mapping[str, Any], limit: int = MAX_STEPS) -> list[Mapping[str, Any]]:
    """The workflow's first `limit` failed step nodes (pods), in the order they started."""
    nodes = _mapping(_mapping(workflow.get("status")).get("nodes")).values()
    failed = [
        _mapping(node)
        for node in nodes
        if _mapping(node).get("type") in _STEP_TYPES and _mapping(node).get("phase") in _FAILED
    ]
    failed.sort(key=lambda node: (str(node.get("startedAt") or ""), str(node.get("name") or "")))
    return failed[:limit]


def classify_workflow(workflow: Mapping[str, Any]) -> Classification:
    """The class of a failed workflow: its first failed step's, else its own message's."""
    nodes = failed_nodes(workflow, 1)
    if nodes:
        return classify_node(nodes[0])
    return classify_node({"message": _mapping(workflow.get("status")).get("message")})


def pod_name(workflow: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    """The Kubernetes pod of a node (`GeneratePodName`): v1 is the node id; v2 is
    `<workflow>-<template>-<fnv32a(node name)>`."""
    metadata = _mapping(workflow.get("metadata"))
    workflow_name = str(metadata.get("name") or "")
    node_id, node_name = str(node.get("id") or ""), str(node.get("name") or "")
    if _mapping(metadata.get("annotations")).get(POD_NAME_FORMAT) == "v1":
        return node_id
    if node_name == workflow_name:
        return workflow_name
    template = _mapping(node.get("templateRef")).get("template") or node.get("templateName")
    prefix = f"{workflow_name}-{template}" if template else workflow_name
    return f"{prefix[:242]}-{fnv32a(node_name.encode())}"


def fnv32a(data: bytes) -> int:
    """FNV-1a, 32 bits (Go's `hash/fnv.New32a`)."""
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def step_name(node: Mapping[str, Any]) -> str:
    return str(node.get("displayName") or node.get("name") or node.get("id") or "?")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
