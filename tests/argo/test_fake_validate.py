"""The fake Argo's port of validate.go: each rule refuses a bad workflow and keeps a good one,
and every workflow we (and ogdc-runner) render passes, so the fake is not stricter than Argo
on what we send."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.argo import schema_problems
from tests.fakes.argo_validate import Invalid, validate_workflow
from tests.recipes.test_render_helpers import (
    REFERENCE_NAMES,
    VIZ_VARIANTS,
    load_reference,
    render,
    write_viz_variant,
)
from tests.support.data import OGDC_RECIPES, ogdc_runner_renders

ECHO = "echo {{inputs.parameters.text}} > /tmp/said; echo {{pod.name}} {{workflow.name}}"
GOOD: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "lint-"},
    "spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": "who", "value": "world"}]},
        "templates": [
            {
                "name": "main",
                "steps": [
                    [{"name": "hello", "template": "echo", "arguments": {"parameters": [
                        {"name": "text", "value": "{{workflow.parameters.who}}"}]}}],
                    [{"name": "again", "template": "echo", "arguments": {"parameters": [
                        {"name": "text", "value": "{{steps.hello.outputs.parameters.said}}"}]}}],
                    [{"name": "fan", "template": "fan-out"}],
                ],
            },
            {
                "name": "echo",
                "inputs": {"parameters": [{"name": "text"}]},
                "outputs": {"parameters": [{"name": "said", "valueFrom": {"path": "/tmp/said"}}]},
                "container": {"image": "alpine:3.20", "command": ["sh", "-c"], "args": [ECHO]},
            },
            {
                "name": "fan-out",
                "dag": {"tasks": [
                    {"name": "list", "template": "lister"},
                    {"name": "each", "template": "echo", "depends": "list.Succeeded",
                     "withParam": "{{tasks.list.outputs.result}}",
                     "arguments": {"parameters": [{"name": "text", "value": "{{item}}"}]}},
                ]},
            },
            {"name": "lister", "script": {"image": "python:3.12", "command": ["python"],
                                          "source": "print('[1, 2]')  # {{=sprig.now()}}"}},
        ],
    },
}  # fmt: skip


def _template(wf: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in wf["spec"]["templates"] if t["name"] == name)


def _step(wf: dict[str, Any], group: int) -> dict[str, Any]:
    step: dict[str, Any] = _template(wf, "main")["steps"][group][0]
    return step


def _task(wf: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in _template(wf, "fan-out")["dag"]["tasks"] if t["name"] == name)


def _arg(call: dict[str, Any], value: str) -> None:
    call["arguments"]["parameters"][0]["value"] = value


SCRIPT = {"image": "python:3.12", "source": "print()"}
LIST_RESULT = "{{tasks.list.outputs.result}}"
Change = Callable[[dict[str, Any]], object]
RULES: list[tuple[str, Change, str]] = [
    ("entrypoint required", lambda wf: wf["spec"].update(entrypoint=""),
     "spec.entrypoint is required"),
    ("entrypoint names a template", lambda wf: wf["spec"].update(entrypoint="nope"),
     "template name 'nope' undefined"),
    ("template names unique", lambda wf: wf["spec"]["templates"].append(_template(wf, "echo")),
     "spec.templates[4].name 'echo' is not unique"),
    ("template names well-formed", lambda wf: _template(wf, "lister").update(name="Lister_1"),
     "spec.templates[3].name: 'Lister_1' is invalid"),
    ("one template type", lambda wf: _template(wf, "echo").update(script=SCRIPT),
     "templates.echo multiple template types specified"),
    ("steps call existing templates",
     lambda wf: _step(wf, 0).update(template="missing"),
     "templates.main.steps[0].hello template name 'missing' undefined"),
    ("dag tasks call existing templates", lambda wf: _task(wf, "list").update(template="missing"),
     "templates.fan-out.tasks.list template name 'missing' undefined"),
    ("step names unique in a template",
     lambda wf: _step(wf, 1).update(name="hello"),
     "templates.main.steps[1].name 'hello' is not unique"),
    ("dag task names unique", lambda wf: _task(wf, "each").update(name="list"),
     "templates.fan-out.tasks[1].name 'list' is not unique"),
    ("inputs.parameters resolve",
     lambda wf: _template(wf, "echo")["container"].update(args=["{{inputs.parameters.txt}}"]),
     "failed to resolve {{inputs.parameters.txt}}"),
    ("workflow.parameters resolve",
     lambda wf: _arg(_step(wf, 0), "{{workflow.parameters.whom}}"),
     "templates.main.steps failed to resolve {{workflow.parameters.whom}}"),
    ("steps outputs resolve",
     lambda wf: _arg(_step(wf, 1), "{{steps.hello.outputs.parameters.x}}"),
     "failed to resolve {{steps.hello.outputs.parameters.x}}"),
    ("steps see only earlier steps",
     lambda wf: _arg(_step(wf, 0), "{{steps.again.outputs.parameters.said}}"),
     "failed to resolve {{steps.again.outputs.parameters.said}}"),
    ("inputs without default are supplied",
     lambda wf: _step(wf, 0).pop("arguments"),
     "templates.main.steps[0].hello inputs.parameters.text had no value"),
    ("dag dependencies exist", lambda wf: _task(wf, "each").update(depends="lost"),
     "templates.fan-out.tasks.each dependency 'lost' not defined"),
    ("dag has no cycles", lambda wf: _task(wf, "list").update(depends="each"),
     "templates.fan-out.tasks dependency cycle detected: each->list->each"),
    ("task arguments name ancestors",
     lambda wf: (_task(wf, "each").pop("depends"), _arg(_task(wf, "each"), LIST_RESULT)),
     "templates.fan-out.tasks.each missing dependency 'list' for parameter 'text'"),
    ("parallelism only on steps and dag", lambda wf: _template(wf, "echo").update(parallelism=2),
     "templates.echo.parallelism is only valid for steps and dag templates"),
    ("output parameters have a source",
     lambda wf: _template(wf, "echo")["outputs"]["parameters"][0].pop("valueFrom"),
     "templates.echo.outputs.parameters.said does not have valueFrom or value specified"),
    ("images are given", lambda wf: _template(wf, "echo")["container"].update(image=""),
     "templates.echo.container.image may not be empty"),
]  # fmt: skip


def test_the_good_workflow_is_valid_for_the_schema_and_the_validator() -> None:
    assert schema_problems(GOOD) == []
    validate_workflow(GOOD, lint=False)


@pytest.mark.parametrize(("change", "message"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule_refuses_what_argo_refuses(change: Change, message: str) -> None:
    bad = copy.deepcopy(GOOD)
    change(bad)
    assert schema_problems(bad) == []  # only the validator, not the schema, can tell
    with pytest.raises(Invalid) as caught:
        validate_workflow(bad, lint=True)
    assert message in str(caught.value)


def test_workflow_arguments_need_a_value_on_create_not_on_lint() -> None:
    wf = copy.deepcopy(GOOD)
    del wf["spec"]["arguments"]["parameters"][0]["value"]
    validate_workflow(wf, lint=True)  # `Opts{Lint: true}` allows empty values
    with pytest.raises(Invalid, match=r"spec\.arguments\.who\.value or .*valueFrom is required"):
        validate_workflow(wf, lint=False)


def _reference_workflows(repo: Path, tmp: Path) -> list[tuple[str, Any]]:
    """Ours: every vendored recipe and visualization variant; ogdc-runner's: its renders."""
    ours = [(name, render(load_reference(repo, name))) for name in REFERENCE_NAMES]
    for variant in VIZ_VARIANTS:
        directory = write_viz_variant(repo, tmp / "recipes", variant)
        ours.append((variant, render(load_reference(tmp, directory.name))))
    theirs = []
    for version in ("0.3.0", "0.4.2"):
        data = json.loads(ogdc_runner_renders(version).read_text())
        for group in ("recipes", "viz_variants"):
            theirs += [(f"{version}/{k}", v["workflow"]) for k, v in data.get(group, {}).items()]
    return ours + theirs


def test_every_reference_render_passes(tmp_path: Path) -> None:
    refused = {}
    for name, wf in _reference_workflows(OGDC_RECIPES, tmp_path):
        try:
            validate_workflow(wf, lint=False)
        except Invalid as err:
            refused[name] = str(err)
    assert refused == {}
