"""The deployment example stays in step with the service it deploys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ogdc_hooks import settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SETTINGS_SOURCE = Path(settings.__file__).read_text()


def _load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "kubernetes" / name).read_text())
    assert isinstance(document, dict)
    return document


def test_two_replicas_with_probes_on_healthz_and_readyz() -> None:
    deployment = _load("deployment.yaml")
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "serve"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["envFrom"] == [{"secretRef": {"name": "ogdc-hooks"}}]
    service = _load("service.yaml")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_every_variable_named_is_one_the_service_reads() -> None:
    (container,) = _load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    names = [variable["name"] for variable in container["env"]]
    names += list(_load("secret.example.yaml")["stringData"])
    for name in names:
        assert f'"{name}"' in SETTINGS_SOURCE, name


def test_the_image_runs_serve_as_a_non_root_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    assert "USER 10001" in dockerfile
