"""Shell recipes, sequential form: fetch, then one step per command, then publish.

As ogdc-runner builds it: a `main` steps template; each command runs as
`sh -c "mkdir -p /output_dir/ && <command>"` reading the previous step's
`output-dir` artifact as `input-dir` at `/input_dir/`. Before fetching, the
output guard step checks or clears the published output (see `common`).
"""

from __future__ import annotations

from typing import Any

from hera.workflows import models as m

from ogdc_hooks.recipes.render import embed
from ogdc_hooks.recipes.render.common import (
    ENTRYPOINT,
    Context,
    artifact,
    assemble,
    container,
    output_guard,
    template_name,
)
from ogdc_hooks.recipes.render.inputs import claim_volumes, fetch_template
from ogdc_hooks.recipes.render.publish import INPUT_DIR, PUBLISH, publish_template

KIND = "shell"


def command_template(ctx: Context, index: int, command: str) -> m.Template:
    return container(
        ctx,
        f"run-cmd-{index}",
        f"mkdir -p /output_dir/ && {embed.shell_command(command)}",
        inputs=m.Inputs(artifacts=[artifact("input-dir", INPUT_DIR)]),
        outputs=m.Outputs(artifacts=[artifact("output-dir", "/output_dir/")]),
    )


def _step(name: str, template: str, previous: str | None = None) -> m.ParallelSteps:
    arguments = None
    if previous is not None:
        source = f"{{{{steps.{previous}.outputs.artifacts.output-dir}}}}"
        arguments = m.Arguments(artifacts=[m.Artifact(name="input-dir", from_=source)])
    return m.ParallelSteps([m.WorkflowStep(name=name, template=template, arguments=arguments)])


def render(ctx: Context) -> dict[str, Any]:
    guard = output_guard(ctx, uses_scratch=False)
    fetch = fetch_template(ctx)
    commands = [command_template(ctx, i, cmd) for i, cmd in enumerate(ctx.recipe.commands)]
    publish = publish_template(ctx)
    steps = [_step(template_name(guard), template_name(guard))] if guard is not None else []
    steps.append(_step("fetch", template_name(fetch)))
    previous = "fetch"
    for index, template in enumerate(commands):
        steps.append(_step(f"step-{index}", template_name(template), previous))
        previous = f"step-{index}"
    steps.append(_step(PUBLISH, template_name(publish), previous))
    main = m.Template(name=ENTRYPOINT, steps=steps)
    templates = [*([guard] if guard is not None else []), fetch, *commands, publish, main]
    return assemble(ctx, kind=KIND, templates=templates, volumes=claim_volumes(ctx))
