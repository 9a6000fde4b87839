"""The workflow settings of ogdc-runner 0.4.2 (README "Configuration"): same names and defaults,
every value read, a one-line error naming the variable for a bad one, and what the renderer
gets from them."""

from __future__ import annotations

import json

import pytest

from ogdc_hooks.recipes.render import RenderSettings
from ogdc_hooks.settings import SettingsError, load_settings
from ogdc_hooks.workflow_settings import StageResources, VizResources


def test_defaults_are_ogdc_runners() -> None:
    settings = load_settings({})
    assert (settings.retry_enabled, settings.retry_limit, settings.retry_policy) == (
        True,
        3,
        "OnTransientError",
    )
    assert settings.viz_image == "ghcr.io/permafrostdiscoverygateway/pdgworkflow:latest"
    assert settings.viz_setup_image is None
    assert settings.viz_default_partition_size == 1000
    assert settings.viz_resources == VizResources()
    assert VizResources().raster == StageResources(
        requests=(("cpu", "1"), ("memory", "4Gi")), limits=(("cpu", "4"), ("memory", "12Gi"))
    )
    render = RenderSettings.from_settings(settings)
    assert render.setup_image == "ghcr.io/qgreenland-net/ogdc-runner:latest"
    assert (render.retry_limit, render.retry_policy) == (3, "OnTransientError")


def test_every_workflow_variable_is_read() -> None:
    settings = load_settings(
        {
            "ARGO_WORKFLOW_RETRY_ENABLED": "False",
            "ARGO_WORKFLOW_RETRY_LIMIT": "0",
            "ARGO_WORKFLOW_RETRY_POLICY": "always",
            "VIZ_WORKFLOW_IMAGE": "registry.example/pdg:2",
            "VIZ_WORKFLOW_SETUP_IMAGE": "registry.example/setup:1",
            "VIZ_WORKFLOW_RESOURCES": json.dumps(
                {"raster": {"limits": {"memory": "16Gi", "nvidia.com/gpu": 1}}, "stage": {}}
            ),
            "VIZ_WORKFLOW_DEFAULT_PARTITION_SIZE": "50",
        }
    )
    assert (settings.retry_enabled, settings.retry_limit, settings.retry_policy) == (
        False,
        0,
        "Always",
    )
    assert settings.viz_resources.raster.limits == (
        ("cpu", "4"),
        ("memory", "16Gi"),
        ("nvidia.com/gpu", "1"),
    )
    assert settings.viz_resources.stage == VizResources().stage
    render = RenderSettings.from_settings(settings)
    assert render.retry_limit is None  # retries off: no retryStrategy at all
    assert (render.viz_image, render.setup_image) == (
        "registry.example/pdg:2",
        "registry.example/setup:1",
    )
    assert render.viz_default_partition_size == 50


@pytest.mark.parametrize(
    ("value", "claims"),
    [
        (" a, b ,,c ", ("a", "b", "c")),
        ('["a", "b"]', ("a", "b")),
        ('[{"claimName": "a"}, {"claim_name": "b"}, "c"]', ("a", "b", "c")),
        ("[]", ()),
    ],
)
def test_allowed_input_pvcs_as_a_list_or_as_ogdc_runners_json(
    value: str, claims: tuple[str, ...]
) -> None:
    assert load_settings({"OGDC_ALLOWED_INPUT_PVCS": value}).allowed_input_pvcs == claims


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ARGO_WORKFLOW_RETRY_ENABLED", "yes", "must be true or false, got 'yes'"),
        ("ARGO_WORKFLOW_RETRY_LIMIT", "-1", "must be at least 0, got -1"),
        ("ARGO_WORKFLOW_RETRY_LIMIT", "three", "must be a whole number"),
        ("ARGO_WORKFLOW_RETRY_POLICY", "Sometimes", "must be one of Always, OnFailure"),
        ("VIZ_WORKFLOW_DEFAULT_PARTITION_SIZE", "0", "must be at least 1"),
        ("VIZ_WORKFLOW_RESOURCES", "{raster", "must be a JSON object"),
        ("VIZ_WORKFLOW_RESOURCES", "[]", "must be a JSON object"),
        ("VIZ_WORKFLOW_RESOURCES", '{"rasters": {}}', "'rasters' is not a stage; the stages are"),
        ("VIZ_WORKFLOW_RESOURCES", '{"raster": []}', "raster must be a JSON object"),
        (
            "VIZ_WORKFLOW_RESOURCES",
            '{"raster": {"limit": {}}}',
            "raster may only have requests and limits, not 'limit'",
        ),
        (
            "VIZ_WORKFLOW_RESOURCES",
            '{"stage": {"limits": {"cpu": "lots"}}}',
            "stage.limits.cpu must be a quantity such as 500m or 2Gi, not 'lots'",
        ),
        ("VIZ_WORKFLOW_RESOURCES", '{"stage": {"limits": {"cpu": true}}}', "not True"),
        ("OGDC_ALLOWED_INPUT_PVCS", '["a",', "starts with '[' but is not a JSON array"),
        ("OGDC_ALLOWED_INPUT_PVCS", '[{"name": "a"}]', 'not {"name": "a"}'),
        ("OGDC_ALLOWED_INPUT_PVCS", "[7]", "a claim name or an object with a non-empty claimName"),
    ],
)
def test_a_malformed_value_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(f"{name}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
