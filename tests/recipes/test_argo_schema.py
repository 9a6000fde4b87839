"""Every rendered workflow is one Argo accepts: hera's models, Argo v4.1.2's official JSON
schema (made strict: an unknown key is an error, so a typo cannot hide), Argo's own rules for
template, step, task, parameter and artifact names, and Kubernetes' label rules. Rendering is
pure: the same input gives the same output and no global configuration changes."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hera.shared import global_config
from hera.workflows import models as m
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from ogdc_hooks.recipes.model import InputFile
from tests.recipes.conftest import REFERENCE
from tests.recipes.test_render_helpers import (
    REFERENCE_NAMES,
    load_reference,
    make_recipe,
    render,
    url_inputs,
    url_params,
)
from tests.support.data import ARGO_SCHEMA

WORKFLOW_DEF = "io.argoproj.workflow.v1alpha1.Workflow"
FIELD_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]*")
PARAM_NAME = re.compile(r"[-a-zA-Z0-9_]+")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def _pvc(parallel: bool) -> Any:
    return make_recipe(
        "Pvc input",
        params=[{"type": "pvc_mount", "claim_name": "archive", "path": "raw", "glob": "*.nc"}],
        parallel={"enabled": parallel, "partition_size": 4} if parallel else None,
    )


def _visualizations() -> Iterator[tuple[str, dict[str, Any]]]:
    """Serial and parallel visualizations, from urls and from a claim, with stages turned off."""
    claim = [{"type": "pvc_mount", "claim_name": "archive", "path": "raw", "glob": "*.gpkg"}]
    configs = {
        "all": "{}",
        "no-stager": '{"enable_stager": false, "z_range": [0, 2]}',
        "tiles-only": '{"enable_stager": false, "enable_raster": false, "enable_3dtiles": false}',
    }
    for parallel in (False, True):
        for key, config in configs.items():
            tag = f"viz-{'parallel' if parallel else 'serial'}-{key}"
            viz = {"parallel": {"enabled": parallel, "partition_size": 2}}
            urls = make_recipe("Viz", params=url_params(3), viz=viz, viz_config=config)
            yield f"{tag}-urls", render(urls, inputs=url_inputs(3))
            claims = make_recipe("Viz", params=claim, viz=viz, viz_config=config)
            yield f"{tag}-claim", render(claims, inputs=[])


def rendered_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every kind of workflow: reference recipes, sequential/parallel/viz, pvc/temporary,
    overwrite, pvc_mount, many files, awkward commands."""
    for name in REFERENCE_NAMES:
        recipe = load_reference(REFERENCE, name)
        yield f"reference-{name}", render(recipe)
        yield f"reference-{name}-overwrite", render(recipe, overwrite=True)
    for output in ("pvc", "temporary"):
        for overwrite in (False, True):
            tag = f"{output}-{'overwrite' if overwrite else 'keep'}"
            yield f"sequential-{tag}", render(make_recipe(output=output), overwrite=overwrite)
            recipe = make_recipe(
                output=output,
                params=url_params(5),
                commands=("a", "b", "c"),
                parallel={"enabled": True, "partition_size": 2},
            )
            yield f"parallel-{tag}", render(recipe, inputs=url_inputs(5), overwrite=overwrite)
    yield "sequential-pvc-mount", render(_pvc(False), inputs=[])
    yield "parallel-pvc-mount", render(_pvc(True), inputs=[])
    many = make_recipe(
        "Many files", params=url_params(2000), commands=("x", "y", "z"), parallel={"enabled": True}
    )
    yield "parallel-2000-files", render(many, inputs=url_inputs(2000))
    yield "sequential-2000-files", render(make_recipe(params=url_params(2000)), url_inputs(2000))
    yield "viz-no-config", render(make_recipe("Viz", viz={"batch_size": 10}))
    yield from _visualizations()
    awkward = make_recipe(commands=("echo '{{x}}' $$ \"$(HOME)\" \\\\",))
    yield "awkward", render(awkward, inputs=[InputFile("https://a.example/{{x}}?$y", "f")])


CASES = dict(rendered_cases())


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with `additionalProperties: false` on every object that lists properties."""
    strict = copy.deepcopy(schema)
    for definition in strict["definitions"].values():
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return strict


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = _strict(json.loads(ARGO_SCHEMA.read_text()))
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], Resource.from_contents(schema)
    )
    return Draft202012Validator(
        {"$ref": f"{schema['$id']}#/definitions/{WORKFLOW_DEF}"}, registry=registry
    )


def test_the_strict_schema_catches_a_typo(validator: Draft202012Validator) -> None:
    manifest = copy.deepcopy(CASES["sequential-pvc-keep"])
    assert not list(validator.iter_errors(manifest))
    manifest["spec"]["templates"][0]["container"]["imagePullPolicyy"] = "Always"
    assert list(validator.iter_errors(manifest))
    manifest = copy.deepcopy(CASES["sequential-pvc-keep"])
    manifest["spec"]["ttlStrategy"]["secondsAfterSuccess"] = "a day"
    assert list(validator.iter_errors(manifest))


@pytest.mark.parametrize("case", list(CASES))
def test_valid_against_argos_schema(case: str, validator: Draft202012Validator) -> None:
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(CASES[case])
    ]
    assert errors == []


@pytest.mark.parametrize("case", list(CASES))
def test_valid_against_heras_models(case: str) -> None:
    manifest = CASES[case]
    model = m.Workflow.model_validate(manifest)
    # nothing was dropped or changed on the way in: every key is a field hera knows
    assert model.model_dump(by_alias=True, exclude_none=True) == manifest


@pytest.mark.parametrize("case", list(CASES))
def test_argo_name_rules_and_label_rules(case: str) -> None:
    manifest = CASES[case]
    spec = manifest["spec"]
    names = [template["name"] for template in spec["templates"]]
    assert len(names) == len(set(names))
    assert spec["entrypoint"] in names
    for template in spec["templates"]:
        assert FIELD_NAME.fullmatch(template["name"]) and len(template["name"]) <= 128
        for kind in ("inputs", "outputs"):
            for group in ("parameters", "artifacts"):
                for item in template.get(kind, {}).get(group, []):
                    assert PARAM_NAME.fullmatch(item["name"])
        children = [step for group in template.get("steps", []) for step in group]
        children += template.get("dag", {}).get("tasks", [])
        for child in children:
            assert FIELD_NAME.fullmatch(child["name"])
            assert child["template"] in names
    for key, value in manifest["metadata"]["labels"].items():
        assert LABEL_VALUE.fullmatch(value) and len(value) <= 63, (key, value)
    assert len(manifest["metadata"]["generateName"]) + 5 <= 63
    volumes = [volume["name"] for volume in spec["volumes"]]
    assert len(volumes) == len(set(volumes))


def test_rendering_is_pure() -> None:
    before = global_config.__dict__.copy()
    for _ in range(2):
        again = dict(rendered_cases())
        assert json.dumps(again, sort_keys=True) == json.dumps(CASES, sort_keys=True)
    assert global_config.__dict__ == before


def test_schema_file_is_where_the_tests_expect_it() -> None:
    assert WORKFLOW_DEF in json.loads(ARGO_SCHEMA.read_text())["definitions"]
