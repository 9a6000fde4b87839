"""What every rendered workflow shares: the render context, template builders, the
output guard step and the final assembly into a Workflow manifest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hera.workflows import models as m

from ogdc_hooks.recipes.model import InputFile, Recipe
from ogdc_hooks.recipes.render import embed
from ogdc_hooks.recipes.render.names import (
    generate_name,
    workflow_annotations,
    workflow_labels,
)
from ogdc_hooks.recipes.render.settings import RenderSettings, RunIdentity

WORKFLOW_VOLUME = "workflow-volume"
WORKFLOW_MOUNT = "/mnt/workflow"
ENTRYPOINT = "main"
ONE_DAY = 60 * 60 * 24
SEVEN_DAYS = 7 * ONE_DAY


@dataclass(frozen=True)
class Context:
    """Everything one render reads; passed down instead of any global configuration."""

    recipe: Recipe
    inputs: Sequence[InputFile]
    settings: RenderSettings
    run: RunIdentity

    @property
    def id(self) -> str:
        return self.recipe.id

    @property
    def workdir(self) -> str:
        """The recipe's directory on the workflow PVC, as mounted in the containers."""
        return f"{WORKFLOW_MOUNT}/{self.id}"


def template_name(template: m.Template) -> str:
    """The name every template built here has (hera's model allows none)."""
    if template.name is None:
        raise ValueError("a template without a name")
    return template.name


def artifact(name: str, path: str, **fields: Any) -> m.Artifact:
    return m.Artifact(name=name, path=path, **fields)


def workflow_mount(mount_path: str = WORKFLOW_MOUNT, sub_path: str | None = None) -> m.VolumeMount:
    return m.VolumeMount(name=WORKFLOW_VOLUME, mount_path=mount_path, sub_path=sub_path)


def container(
    ctx: Context,
    name: str,
    script: str,
    *,
    image: str | None = None,
    inputs: m.Inputs | None = None,
    outputs: m.Outputs | None = None,
    mounts: Sequence[m.VolumeMount] = (),
    resources: m.ResourceRequirements | None = None,
) -> m.Template:
    """A template running `sh -c <script>`; `$` is doubled for Kubernetes (see `embed`)."""
    return m.Template(
        name=name,
        inputs=inputs,
        outputs=outputs,
        container=m.Container(
            image=image or ctx.settings.runner_image,
            image_pull_policy=ctx.settings.image_pull_policy,
            command=["sh", "-c"],
            args=embed.container_args([script]),
            volume_mounts=list(mounts) or None,
            resources=resources,
        ),
    )


def python_script(
    ctx: Context,
    name: str,
    source: str,
    *,
    image: str | None = None,
    interpreter: str = "python3",
    inputs: m.Inputs | None = None,
    outputs: m.Outputs | None = None,
    mounts: Sequence[m.VolumeMount] = (),
    resources: m.ResourceRequirements | None = None,
) -> m.Template:
    """A template running a Python program given as Argo script `source`."""
    return m.Template(
        name=name,
        inputs=inputs,
        outputs=outputs,
        script=m.ScriptTemplate(
            image=image or ctx.settings.runner_image,
            image_pull_policy=ctx.settings.image_pull_policy,
            command=[interpreter],
            source=source,
            volume_mounts=list(mounts) or None,
            resources=resources,
        ),
    )


def output_guard(ctx: Context, *, uses_scratch: bool) -> m.Template | None:
    """The first step: clear the published output (overwrite) or fail if it exists.

    ogdc-runner runs separate blocking workflows for this; here it is a step of
    the recipe workflow, so the service never waits. `pvc` output lives in the
    recipe's directory on the workflow PVC. `temporary` output is a per-workflow
    artifact, so there is nothing to check; a workflow that keeps scratch files
    in that directory (`uses_scratch`) removes the previous run's.
    """
    workdir = embed.shell_word(ctx.workdir)
    mounts = [workflow_mount()]
    if ctx.recipe.meta.output.type != "pvc":
        if not uses_scratch:
            return None
        scratch = f"{workdir}/partition-manifests {workdir}/inputs {workdir}/cmd-*-partition-*"
        return container(ctx, "clear-scratch", f"rm -rf {scratch}", mounts=mounts)
    if ctx.run.overwrite:
        return container(ctx, "clear-output", f"rm -rf {workdir}", mounts=mounts)
    message = (
        f"ogdc: the output of recipe {ctx.id} already exists at /{ctx.id}/ on the PVC "
        f"{ctx.settings.workflow_pvc}; submit again with overwrite to replace it"
    )
    script = f"if [ -e {workdir} ]; then echo {embed.shell_word(message)} >&2; exit 1; fi"
    return container(ctx, "check-output", script, mounts=mounts)


def retry_strategy(ctx: Context) -> m.RetryStrategy | None:
    """ogdc-runner 0.4.2's workflow-wide retry of failed pods (ARGO_WORKFLOW_RETRY_*).

    The limit is written as a string, as Argo's schema types an int-or-string."""
    if ctx.settings.retry_limit is None:
        return None
    return m.RetryStrategy(
        limit=m.IntOrString(str(ctx.settings.retry_limit)), retry_policy=ctx.settings.retry_policy
    )


def assemble(
    ctx: Context,
    *,
    kind: str,
    templates: Sequence[m.Template],
    volumes: Sequence[m.Volume] = (),
    parallelism: int | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Workflow manifest, as the Argo Server expects it in `{"workflow": ...}`."""
    temporary = ctx.recipe.meta.output.type == "temporary"
    workflow = m.Workflow(
        api_version="argoproj.io/v1alpha1",
        kind="Workflow",
        metadata=m.ObjectMeta(
            generate_name=generate_name(ctx.id, kind),
            namespace=ctx.settings.namespace,
            labels={**(labels or {}), **workflow_labels(ctx.id, ctx.run)},
            annotations={**(annotations or {}), **workflow_annotations(ctx.id, ctx.run)},
        ),
        spec=m.WorkflowSpec(
            entrypoint=ENTRYPOINT,
            service_account_name=ctx.settings.service_account,
            parallelism=parallelism,
            templates=list(templates),
            volumes=[
                m.Volume(
                    name=WORKFLOW_VOLUME,
                    persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(
                        claim_name=ctx.settings.workflow_pvc
                    ),
                ),
                *volumes,
            ],
            retry_strategy=retry_strategy(ctx),
            ttl_strategy=m.TTLStrategy(seconds_after_success=SEVEN_DAYS if temporary else ONE_DAY),
            artifact_gc=m.WorkflowLevelArtifactGC(
                strategy="OnWorkflowDeletion",
                service_account_name=ctx.settings.service_account,
            ),
        ),
    )
    manifest: dict[str, Any] = workflow.model_dump(by_alias=True, exclude_none=True)
    return manifest
