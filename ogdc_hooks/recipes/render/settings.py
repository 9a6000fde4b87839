"""What rendering needs from the configuration and from the run being rendered.

Both are frozen values passed in explicitly, so `render_workflow` reads no
environment and no global configuration (never `hera.shared.global_config`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ogdc_hooks.settings import Settings
from ogdc_hooks.workflow_settings import VizResources

RUNNER_IMAGE = "ghcr.io/qgreenland-net/ogdc-runner"
_RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class RenderSettings:
    """The deployment's Argo settings (README.md "Configuration")."""

    namespace: str = "qgnet"
    service_account: str = "argo-workflow"
    image: str = RUNNER_IMAGE
    image_tag: str = "latest"
    workflow_pvc: str = "cephfs-qgnet-ogdc-workflow-pvc"
    max_parallel_limit: int = 5
    image_pull_policy: str = "IfNotPresent"
    retry_limit: int | None = 3  # None: no retryStrategy
    retry_policy: str = "OnTransientError"
    viz_image: str = Settings.viz_image
    viz_setup_image: str | None = None  # None: the runner image
    viz_resources: VizResources = field(default_factory=VizResources)
    viz_default_partition_size: int = 1000
    max_templates: int = Settings.max_workflow_templates
    max_bytes: int = Settings.max_workflow_bytes

    def __post_init__(self) -> None:
        for name in ("max_parallel_limit", "viz_default_partition_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1: {getattr(self, name)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderSettings:
        return cls(
            namespace=settings.argo_namespace,
            service_account=settings.argo_service_account_name,
            image_tag=settings.runner_image_tag,
            workflow_pvc=settings.workflow_pvc_name,
            max_parallel_limit=settings.max_parallel_limit,
            retry_limit=settings.retry_limit if settings.retry_enabled else None,
            retry_policy=settings.retry_policy,
            viz_image=settings.viz_image,
            viz_setup_image=settings.viz_setup_image,
            viz_resources=settings.viz_resources,
            viz_default_partition_size=settings.viz_default_partition_size,
            max_templates=settings.max_workflow_templates,
            max_bytes=settings.max_workflow_bytes,
        )

    @property
    def runner_image(self) -> str:
        return f"{self.image}:{self.image_tag}"

    @property
    def setup_image(self) -> str:
        """The visualization's setup steps' image: VIZ_WORKFLOW_SETUP_IMAGE or the runner's."""
        return self.viz_setup_image or self.runner_image


@dataclass(frozen=True)
class RunIdentity:
    """Which run a workflow belongs to; ends up in its labels and annotations.

    `run_id` is a UUID in hex (32 lowercase hex digits) so that it is a valid
    label value the service can select its workflows by. `recipe_path` is the
    recipe directory relative to the repository root.
    """

    run_id: str
    recipe_path: str
    repository: str | None = None
    commit: str | None = None
    overwrite: bool = False
    requested_by: str | None = None

    def __post_init__(self) -> None:
        if not _RUN_ID.fullmatch(self.run_id):
            raise ValueError(f"run_id must be a UUID in hex (uuid4().hex), got {self.run_id!r}")
