"""Where a succeeded run's output is, read from its rendered workflow; pure.

`recipes/render/publish.py` writes the last step, `publish-data`: a `temporary` output is
the `published_zip` artifact (downloaded through the Argo Server), a `pvc` output is
copied into `/<recipe id>/` on the workflow volume (the step's `/output_dir/` mount).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ogdc_hooks.recipes.render.publish import PUBLISH, PUBLISHED_ZIP


def _templates(workflow: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for template in (workflow.get("spec") or {}).get("templates") or ():
        if isinstance(template, Mapping):
            yield template


def publishes_zip(workflow: Mapping[str, Any]) -> bool:
    """Whether a rendered workflow has a `temporary` output (the zip artifact)."""
    return any(
        artifact.get("name") == PUBLISHED_ZIP
        for template in _templates(workflow)
        for artifact in (template.get("outputs") or {}).get("artifacts") or []
    )


def pvc_output_path(workflow: Mapping[str, Any]) -> str | None:
    """The directory on the workflow volume a `pvc` output is copied to, e.g. `/seal-tags/`."""
    for template in _templates(workflow):
        if template.get("name") != PUBLISH:
            continue
        for mount in (template.get("container") or {}).get("volumeMounts") or ():
            if mount.get("mountPath") == "/output_dir/" and mount.get("subPath"):
                return f"/{str(mount['subPath']).strip('/')}/"
    return None
