"""The promises of deploy/: both overlays render, every object is valid Kubernetes, and the
Deployment runs the service the way the service and the image expect."""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
from aiohttp import web

from ogdc_hooks import __version__
from ogdc_hooks.api.app import API_MODULES
from ogdc_hooks.pipeline.context import Limits
from ogdc_hooks.settings import Secret, Settings, load_settings
from ogdc_hooks.ui import views as ui_views
from ogdc_hooks.webhooks.events import MAX_BODY_BYTES
from tests.deploy.conftest import Rendered, dockerfile_stages

# The oldest release deploy/README.md promises and the newest the schemas know: every
# rendered object must satisfy both.
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")

# The settings that are secrets: the Deployment must take each from a Secret, by reference.
SECRET_SETTINGS = {
    "OGDC_DB_USERNAME",
    "OGDC_DB_PASSWORD",
    "OGDC_JWT_SECRET_KEY",
    "OGDC_ADMIN_PASSWORD",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_TOKEN",
    "FORGEJO_TOKEN",
    "FORGEJO_WEBHOOK_SECRET",
    "ARGO_TOKEN",
}
# Secret keys an operator adds only with the forge they are for (`optional: true`).
OPTIONAL_SECRETS = {
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_TOKEN",
    "FORGEJO_TOKEN",
    "FORGEJO_WEBHOOK_SECRET",
}
# Settings a cluster deployment has no use for: the embedded database's directory, and the
# key-file alternative to GITHUB_APP_PRIVATE_KEY.
NOT_DEPLOYED = {"OGDC_DATA_DIR", "XDG_DATA_HOME", "GITHUB_APP_PRIVATE_KEY_FILE"}
# Routes that stay inside the cluster: probes and the Prometheus scrape.
INTERNAL_ROUTES = {"/healthz", "/readyz", "/metrics"}
# patch: stopping a run; update (and deleting the failed pods): retrying its failed steps
ROLE_VERBS = ["create", "get", "list", "watch", "patch", "update"]
_BINARY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 2**10, "m": 2**20, "g": 2**30}


class _RecordingEnv(dict[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def _bytes(quantity: str) -> int:
    """A Kubernetes (Ki/Mi/Gi) or nginx (k/m/g) size in bytes."""
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * _BINARY_UNITS[unit]


def _service_env(rendered: Rendered) -> dict[str, str]:
    """What the container's environment would be, with a stand-in for every Secret's value."""
    env = dict(rendered.settings)
    for name, entry in rendered.env.items():
        source = entry["valueFrom"]
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[name] = rendered.namespace
        else:
            env[name] = f"stand-in-for-{source['secretKeyRef']['key']}"
    if not env.get("FORGEJO_URL"):  # no Forgejo instance: its optional keys are not in the Secret
        for name in ("FORGEJO_TOKEN", "FORGEJO_WEBHOOK_SECRET"):
            env.pop(name, None)
    return env


def _route_prefixes() -> set[str]:
    """Each route's path up to its first parameter: what an Ingress path must cover (the
    API's routes, and the dashboard's under /ui)."""
    tables = [(module.routes, "") for module in API_MODULES] + [(ui_views.routes, "/ui")]
    return {
        prefix + route.path.split("/{")[0]
        for routes, prefix in tables
        for route in routes
        if isinstance(route, web.RouteDef)
    }


def test_every_rendered_object_is_valid_kubernetes(rendered: Rendered) -> None:
    kinds = sorted(o["kind"] for o in rendered.objects)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Ingress",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Secret",
            "Service",
            "ServiceAccount",
        ]
    )
    for version in KUBERNETES_VERSIONS:
        for document in rendered.objects:
            kubernetes_validate.validate(document, version, strict=True)


def test_the_validation_refuses_what_kubernetes_would(rendered: Rendered) -> None:
    deployment = json.loads(json.dumps(rendered.one("Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    for version in KUBERNETES_VERSIONS:
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(deployment, version, strict=True)


def test_replicas_two_in_prod_one_in_dev_and_a_drain_takes_one_at_a_time(
    overlays: dict[str, Rendered],
) -> None:
    assert overlays["prod"].one("Deployment")["spec"]["replicas"] == 2
    assert overlays["dev"].one("Deployment")["spec"]["replicas"] == 1
    for rendered in overlays.values():
        budget = rendered.one("PodDisruptionBudget")["spec"]
        assert budget == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": rendered.pod["metadata"]["labels"]},
        }
        strategy = rendered.one("Deployment")["spec"]["strategy"]["rollingUpdate"]
        assert strategy["maxUnavailable"] == 0  # an upgrade never drops below the replicas


def test_probes_ask_healthz_for_liveness_and_readyz_for_readiness(rendered: Rendered) -> None:
    root = rendered.settings["API_ROOT_PATH"]
    container = rendered.container
    probes = {
        kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
        for kind in ("livenessProbe", "readinessProbe", "startupProbe")
    }
    assert probes == {
        "livenessProbe": (posixpath.join(root, "healthz"), "http"),
        "readinessProbe": (posixpath.join(root, "readyz"), "http"),
        "startupProbe": (posixpath.join(root, "readyz"), "http"),
    }
    (port,) = container["ports"]
    assert port["name"] == "http"
    assert container["args"][-2:] == ["--port", str(port["containerPort"])]


def test_the_container_runs_the_image_as_its_non_root_user_on_a_read_only_root(
    rendered: Rendered,
) -> None:
    pod = rendered.pod["spec"]
    final = dockerfile_stages()[-1]
    (user,) = final.values("USER")
    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
    security = rendered.container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    (cmd,) = final.values("CMD")
    assert rendered.container["args"] == json.loads(cmd)


def test_the_only_writable_place_is_an_empty_dir_at_tmp_big_enough_for_every_checkout(
    rendered: Rendered,
) -> None:
    writable = [m for m in rendered.container["volumeMounts"] if not m.get("readOnly")]
    (mount,) = writable
    assert mount["mountPath"] == "/tmp"  # tempfile's default, where checkouts go
    (volume,) = [v for v in rendered.pod["spec"]["volumes"] if v["name"] == mount["name"]]
    size = _bytes(volume["emptyDir"]["sizeLimit"])
    slots = int(rendered.settings["OGDC_WORKER_SLOTS"])
    assert size >= slots * Limits().clone_max_bytes
    limits = rendered.container["resources"]["limits"]
    assert _bytes(limits["ephemeral-storage"]) >= size


def test_the_oidc_client_is_mounted_where_ogdc_helm_mounts_it(rendered: Rendered) -> None:
    """ogdc-helm 0.4.3: Secret `<release>-oidc-config`, key client_secrets.json, mounted
    read-only at /etc/ogdc/oidc; optional here, since local users need no provider."""
    (mount,) = [m for m in rendered.container["volumeMounts"] if m["name"] == "oidc-client-secrets"]
    assert mount == {"name": "oidc-client-secrets", "mountPath": "/etc/ogdc/oidc", "readOnly": True}
    (volume,) = [v for v in rendered.pod["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"].endswith("-oidc-config")
    assert volume["secret"]["optional"] is True
    assert volume["secret"]["items"] == [
        {"key": "client_secrets.json", "path": "client_secrets.json"}
    ]
    named = rendered.settings["OIDC_CLIENT_SECRETS_FILE"]
    assert named in ("", f"{mount['mountPath']}/client_secrets.json")


def test_requests_and_limits_for_cpu_and_memory(rendered: Rendered) -> None:
    resources = rendered.container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), kind
    assert _bytes(resources["requests"]["memory"]) <= _bytes(resources["limits"]["memory"])


def test_no_service_account_token_is_mounted(rendered: Rendered) -> None:
    pod = rendered.pod["spec"]
    account = rendered.one("ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is False
    assert account["automountServiceAccountToken"] is False


def test_every_secret_is_a_reference_and_none_holds_a_value(rendered: Rendered) -> None:
    for secret in rendered.all("Secret"):  # only the service account token Kubernetes fills in
        assert secret["type"] == "kubernetes.io/service-account-token"
        assert "data" not in secret
        assert "stringData" not in secret
    for entry in rendered.container["env"]:
        assert "value" not in entry, entry["name"]  # literal values live in the ConfigMap
    for name in SECRET_SETTINGS:
        assert name not in rendered.settings, name
        assert "secretKeyRef" in rendered.env[name]["valueFrom"], name
    for name, value in rendered.settings.items():
        assert urlsplit(value).password is None, name
        assert "PRIVATE KEY" not in value, name


def test_the_secret_settings_are_every_secret_the_service_reads() -> None:
    env = {name: "x" * 40 for name in SECRET_SETTINGS} | {
        "OGDC_DB_HOST": "db",
        "GITHUB_APP_ID": "1",
        "FORGEJO_URL": "https://forgejo.example.org",
    }
    settings = load_settings(env)
    secret_fields = [f.name for f in dataclasses.fields(Settings) if "Secret" in str(f.type)]
    assert secret_fields
    for field in secret_fields:
        assert isinstance(getattr(settings, field), Secret), field


def test_database_credentials_are_those_of_the_release_whose_database_is_the_host(
    rendered: Rendered,
) -> None:
    host = rendered.settings["OGDC_DB_HOST"]
    assert host.endswith("-db-cnpg-rw")  # the read-write service of CloudNativePG
    release = host.removesuffix("-db-cnpg-rw")
    for name, key in (("OGDC_DB_USERNAME", "username"), ("OGDC_DB_PASSWORD", "password")):
        assert rendered.env[name]["valueFrom"]["secretKeyRef"] == {
            "name": f"{release}-db-postgres-secrets",
            "key": key,
        }
    assert rendered.settings["OGDC_WORKFLOW_PVC_NAME"] == f"cephfs-{release}-workflow-pvc"
    assert urlsplit(rendered.settings["ARGO_WORKFLOWS_SERVICE_URL"]).hostname == (
        f"{release}-argo-workflows-server"
    )


def test_the_forge_credentials_of_the_modes_not_chosen_may_be_missing(rendered: Rendered) -> None:
    for name in SECRET_SETTINGS:
        reference = rendered.env[name]["valueFrom"]["secretKeyRef"]
        optional = name in OPTIONAL_SECRETS
        assert reference.get("optional", False) is optional, name


def test_every_variable_is_one_the_service_reads_and_every_setting_is_there(
    rendered: Rendered,
) -> None:
    # Else Kubernetes adds OGDC_HOOKS_* variables for the Service, among the settings' names.
    assert rendered.pod["spec"]["enableServiceLinks"] is False
    env = _RecordingEnv(_service_env(rendered))
    settings = load_settings(env)  # the rendered values are valid settings
    assert settings.db_host == rendered.settings["OGDC_DB_HOST"]
    assert settings.argo_namespace == rendered.namespace
    assert not settings.dry_run
    unread = set(env) - env.asked
    assert not unread, f"the service does not read {sorted(unread)}"
    mentioned = set(rendered.settings) | set(rendered.env)
    missing = env.asked - mentioned - NOT_DEPLOYED
    assert not missing, f"settings the manifests do not mention: {sorted(missing)}"


def test_the_argo_role_may_create_read_list_watch_stop_and_retry_workflows_only(
    rendered: Rendered,
) -> None:
    role = rendered.one("Role")
    assert role["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ROLE_VERBS},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
    ]
    account = rendered.one("ServiceAccount")["metadata"]
    binding = rendered.one("RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": rendered.namespace}
    ]
    # ARGO_NAMESPACE is the pods' own namespace: where the Role is.
    assert rendered.env["ARGO_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }


def test_argo_token_is_the_service_accounts_token_secret(rendered: Rendered) -> None:
    token = rendered.one("Secret")
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": account}
    assert token["metadata"]["name"] == f"{account}.service-account-token"  # Argo's convention
    assert rendered.env["ARGO_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": token["metadata"]["name"],
        "key": "token",
    }


def test_the_service_selects_the_pods_and_the_ingress_reaches_the_service(
    rendered: Rendered,
) -> None:
    service = rendered.one("Service")
    labels = rendered.pod["metadata"]["labels"]
    assert service["spec"]["selector"] == labels
    assert rendered.one("Deployment")["spec"]["selector"]["matchLabels"] == labels
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    (rule,) = rendered.one("Ingress")["spec"]["rules"]
    for path in rule["http"]["paths"]:
        assert path["backend"] == {
            "service": {"name": service["metadata"]["name"], "port": {"name": port["name"]}}
        }


def test_the_ingress_serves_the_api_and_the_webhook_and_nothing_internal(
    rendered: Rendered,
) -> None:
    spec = rendered.one("Ingress")["spec"]
    (rule,) = spec["rules"]
    root = rendered.settings["API_ROOT_PATH"].rstrip("/")
    paths = [path["path"] for path in rule["http"]["paths"]]
    assert {path["pathType"] for path in rule["http"]["paths"]} == {"Prefix"}
    routes = {root + route for route in _route_prefixes()}
    assert root + "/webhooks/github" in routes

    def covered(route: str) -> bool:  # Prefix matching is by whole path segments
        return any(route == path or route.startswith(path + "/") for path in paths)

    for route in routes:
        internal = route.removeprefix(root) in INTERNAL_ROUTES
        assert covered(route) is not internal, route
    for path in paths:
        assert any(route == path or route.startswith(path + "/") for route in routes), path
    assert spec["tls"] == [{"hosts": [rule["host"]], "secretName": "ogdc-hooks-tls"}]


def test_the_ingress_lets_github_payloads_through(rendered: Rendered) -> None:
    annotations = rendered.one("Ingress")["metadata"]["annotations"]
    limit = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert _bytes(limit) >= MAX_BODY_BYTES


def test_each_overlay_has_a_host_and_an_argo_ui_of_its_own(overlays: dict[str, Rendered]) -> None:
    hosts = {r.one("Ingress")["spec"]["rules"][0]["host"] for r in overlays.values()}
    assert len(hosts) == len(overlays)
    interfaces = {r.settings["ARGO_UI_URL"] for r in overlays.values()}
    assert len(interfaces) == len(overlays)
    for rendered in overlays.values():
        assert urlsplit(rendered.settings["ARGO_UI_URL"]).scheme == "https", rendered.overlay


def test_prod_runs_the_image_of_this_version(overlays: dict[str, Rendered]) -> None:
    image = overlays["prod"].container["image"]
    assert image == f"ghcr.io/qgreenland-net/ogdc-hooks:{__version__}"
