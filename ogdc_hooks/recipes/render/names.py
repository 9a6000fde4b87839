"""Names, labels and annotations of rendered workflows, within Kubernetes' limits.

Argo appends a 5-character random suffix to `generateName`; the final name
must stay a DNS-1123 subdomain of at most 63 characters. ogdc-runner truncates
the recipe id without counting the two dashes around the kind and can produce
65-character names (docs/recipes.md, fix); here they are counted.
"""

from __future__ import annotations

import re

from ogdc_hooks.recipes.render.settings import RunIdentity

NAME_MAX = 63
ARGO_SUFFIX = 5
LABEL_MAX = 63
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

MANAGED_BY = "ogdc-hooks"
RUN_ID_LABEL = "ogdc/run-id"
RECIPE_ID_LABEL = "ogdc/recipe-id"
ARCHIVE_LABEL = "ogdc/persist-workflow-in-archive"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"


def generate_name(recipe_id: str, kind: str) -> str:
    """`<recipe-id>-<kind>-`, the id cut so that the name Argo makes has at most 63 characters.

    An id that cannot start a Kubernetes name as it is (it is checked with a
    stand-in suffix) has its characters other than `[a-z0-9-]` replaced by `-`.
    """
    room = NAME_MAX - ARGO_SUFFIX - len(kind) - 2
    candidate = f"{recipe_id[:room]}-{kind}-"
    if _SUBDOMAIN.fullmatch(candidate + "x" * ARGO_SUFFIX):
        return candidate
    cleaned = re.sub(r"[^a-z0-9-]", "-", recipe_id.lower()).lstrip("-")[:room]
    return f"{cleaned or 'recipe'}-{kind}-"


def label_value(value: str) -> str:
    """`value` made a valid label value: allowed characters only, at most 63, alphanumeric ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:LABEL_MAX]
    cleaned = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
    return cleaned or "none"


def workflow_labels(recipe_id: str, run: RunIdentity) -> dict[str, str]:
    """Labels every recipe workflow carries, so the service can find its own again."""
    return {
        ARCHIVE_LABEL: "true",
        MANAGED_BY_LABEL: MANAGED_BY,
        RUN_ID_LABEL: run.run_id,
        RECIPE_ID_LABEL: label_value(recipe_id),
    }


def workflow_annotations(recipe_id: str, run: RunIdentity) -> dict[str, str]:
    """Where the workflow comes from, untruncated (annotations have no 63-character limit)."""
    known = {
        "ogdc/recipe-id": recipe_id,
        "ogdc/recipe-path": run.recipe_path,
        "ogdc/repository": run.repository,
        "ogdc/commit": run.commit,
        "ogdc/requested-by": run.requested_by,
        "ogdc/overwrite": "true" if run.overwrite else "false",
    }
    return {key: value for key, value in known.items() if value is not None}
