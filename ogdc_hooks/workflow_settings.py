"""The values of the workflow settings that are more than a word: parsed and checked here.

ogdc-runner 0.4.2 reads them from the same variables (its `argo.py` and
`workflow/viz_workflow.py`); these parsers accept what it accepts and say in one
sentence what is wrong with anything else, where ogdc-runner raises or silently
ignores it. `settings.py` calls them; each raises `ValueError` with that sentence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from typing import Any

# Argo's retryPolicy values (RetryStrategy in the Workflow schema).
RETRY_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")
# A Kubernetes resource quantity: a number with an optional suffix (`500m`, `2Gi`, `1e3`).
_QUANTITY = re.compile(r"(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|[numkMGTPE]i?)?")
_RESOURCE_KINDS = ("requests", "limits")

Quantities = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class StageResources:
    """Requests and limits of one visualization stage's pods, as (resource, quantity) pairs."""

    requests: Quantities
    limits: Quantities

    def merged(self, overrides: Any, where: str) -> StageResources:
        """These resources with `overrides` (`{"requests": {...}, "limits": {...}}`) on top."""
        if not isinstance(overrides, dict):
            raise ValueError(f"{where} must be a JSON object")
        unknown = sorted(set(overrides) - set(_RESOURCE_KINDS))
        if unknown:
            raise ValueError(f"{where} may only have requests and limits, not {unknown[0]!r}")
        values = {
            kind: _merge(getattr(self, kind), overrides.get(kind, {}), f"{where}.{kind}")
            for kind in _RESOURCE_KINDS
        }
        return StageResources(**values)


def _merge(base: Quantities, overrides: Any, where: str) -> Quantities:
    if not isinstance(overrides, dict):
        raise ValueError(f"{where} must be a JSON object")
    merged = dict(base)
    for resource, quantity in overrides.items():
        text = str(quantity) if isinstance(quantity, int | float | str) else ""
        if isinstance(quantity, bool) or not _QUANTITY.fullmatch(text):
            raise ValueError(
                f"{where}.{resource} must be a quantity such as 500m or 2Gi, not {quantity!r}"
            )
        merged[resource] = text
    return tuple(merged.items())


def _stage(cpu: tuple[str, str], memory: tuple[str, str]) -> StageResources:
    """A stage's default: (request, limit) of CPU and of memory."""
    return StageResources(
        requests=(("cpu", cpu[0]), ("memory", memory[0])),
        limits=(("cpu", cpu[1]), ("memory", memory[1])),
    )


@dataclass(frozen=True)
class VizResources:
    """Resources per visualization stage; the defaults are ogdc-runner 0.4.2's.

    `stage`: staging and web tiles; `raster`: rasterizing, composites and the
    serial form; `threedtile`: 3D tiles; `discovery`: the steps that list tiles.
    """

    stage: StageResources = field(default=_stage(("500m", "2"), ("2Gi", "6Gi")))
    raster: StageResources = field(default=_stage(("1", "4"), ("4Gi", "12Gi")))
    threedtile: StageResources = field(default=_stage(("2", "4"), ("4Gi", "8Gi")))
    discovery: StageResources = field(default=_stage(("250m", "500m"), ("512Mi", "1Gi")))


def viz_resources(raw: str) -> VizResources:
    """`VIZ_WORKFLOW_RESOURCES`: a JSON object of stage -> {requests, limits}, over the defaults."""
    try:
        overrides = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError('must be a JSON object such as {"stage": {"limits": ...}}') from None
    if not isinstance(overrides, dict):
        raise ValueError('must be a JSON object such as {"stage": {"limits": ...}}')
    defaults = VizResources()
    stages = [item.name for item in fields(VizResources)]
    unknown = sorted(set(overrides) - set(stages))
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a stage; the stages are {', '.join(stages)}")
    return VizResources(
        **{
            stage: getattr(defaults, stage).merged(overrides[stage], stage)
            for stage in stages
            if stage in overrides
        }
    )


def claim_names(raw: str) -> tuple[str, ...]:
    """`OGDC_ALLOWED_INPUT_PVCS`: claims as a comma-separated list, or as ogdc-runner 0.4.2
    reads them, a JSON array of names or of objects with `claimName` (or `claim_name`)."""
    if not raw.lstrip().startswith("["):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError("starts with '[' but is not a JSON array") from None
    names = []
    for entry in entries:
        name = (
            (entry.get("claimName") or entry.get("claim_name"))
            if isinstance(entry, dict)
            else entry
        )
        if not isinstance(name, str) or not name.strip():
            raise ValueError(
                "each entry of the JSON array must be a claim name or an object with a "
                f"non-empty claimName, not {json.dumps(entry)}"
            )
        names.append(name.strip())
    return tuple(names)


def retry_policy(raw: str) -> str:
    """`ARGO_WORKFLOW_RETRY_POLICY`: one of Argo's policies, in any case."""
    for policy in RETRY_POLICIES:
        if raw.lower() == policy.lower():
            return policy
    raise ValueError(f"must be one of {', '.join(RETRY_POLICIES)}, got {raw!r}")


def boolean(raw: str) -> bool:
    """`true` or `false` in any case, as Helm renders booleans."""
    if raw.lower() not in ("true", "false"):
        raise ValueError(f"must be true or false, got {raw!r}")
    return raw.lower() == "true"
