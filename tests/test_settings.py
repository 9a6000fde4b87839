"""Settings: every variable read once, defaults from ogdc-runner's service, one clear error
per bad value."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ogdc_hooks.auth.oidc import load_client_secrets
from ogdc_hooks.settings import (
    Secret,
    SettingsError,
    load_settings,
    with_development_secrets,
)
from tests.support.tls import private_ca

REAL_DB = {
    "OGDC_DB_HOST": "db.example",
    "OGDC_DB_USERNAME": "ogdc",
    "OGDC_DB_PASSWORD": "db-password",
    "OGDC_JWT_SECRET_KEY": "jwt-secret-key-of-at-least-32-characters",
    "OGDC_ADMIN_PASSWORD": "admin-password",
}


def test_defaults_are_the_seeds() -> None:
    settings = load_settings({"OGDC_DATA_DIR": "/tmp/x"})
    assert settings.embedded_db
    assert settings.dry_run
    assert settings.db_name == "ogdc"
    assert settings.db_port == 5432
    assert settings.workflow_pvc_name == "cephfs-qgnet-ogdc-workflow-pvc"
    assert settings.argo_namespace == "qgnet"
    assert settings.argo_service_account_name == "argo-workflow"
    assert settings.runner_image_tag == "latest"
    assert settings.max_parallel_limit == 5
    assert settings.api_root_path == "/"
    assert settings.github_api_url == "https://api.github.com"
    assert (settings.log_format, settings.log_level) == ("text", "INFO")
    assert settings.run_deadline_hours == 48
    assert (settings.reconcile_seconds, settings.reconcile_lookback_hours) == (300, 72)
    assert settings.data_dir == Path("/tmp/x")


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            **REAL_DB,
            "OGDC_DB_PORT": "6543",
            "OGDC_DB_NAME": "other",
            "OGDC_WORKFLOW_PVC_NAME": "pvc",
            "ARGO_NAMESPACE": "ns",
            "ARGO_SERVICE_ACCOUNT_NAME": "sa",
            "ARGO_WORKFLOWS_SERVICE_URL": "https://argo.example/",
            "ARGO_TOKEN": "argo-token",
            "ARGO_UI_URL": "https://ui.example",
            "OGDC_RUNNER_IMAGE_TAG": "v1",
            "OGDC_MAX_PARALLEL_LIMIT": "7",
            "OGDC_ALLOWED_INPUT_PVCS": " a, b ,,c ",
            "DATAONE_NODE_URL": "http://d1.example",
            "API_ROOT_PATH": "/api/",
            "GITHUB_WEBHOOK_SECRET": "whsec",
            "GITHUB_API_URL": "https://ghe.example/api/v3",
            "GITHUB_APP_ID": "42",
            "GITHUB_APP_PRIVATE_KEY": "pem",
            "GITHUB_TOKEN": "ghp",
            "OGDC_SUBMIT_ALLOWED_HOSTS": "GitHub.com, git.internal:8443,[::1]:3000",
            "OGDC_CREDENTIAL_REPOSITORIES": "QGreenland-Net/ogdc-recipes, qgnet/*",
            "OGDC_LOG_FORMAT": "JSON",
            "OGDC_LOG_LEVEL": "debug",
            "OGDC_RECONCILE_SECONDS": "0",
            "OGDC_RECONCILE_LOOKBACK_HOURS": "168",
        }
    )
    assert (settings.reconcile_seconds, settings.reconcile_lookback_hours) == (0, 168)
    assert not settings.embedded_db and not settings.dry_run
    assert (settings.db_host, settings.db_port, settings.db_name) == ("db.example", 6543, "other")
    assert settings.argo_workflows_service_url == "https://argo.example"
    assert settings.argo_ui_base == "https://ui.example"
    assert settings.allowed_input_pvcs == ("a", "b", "c")
    assert settings.max_parallel_limit == 7
    assert settings.api_root_path == "/api"
    assert settings.github_app_mode
    assert settings.submit_allowed_hosts == ("github.com", "git.internal:8443", "[::1]:3000")
    assert settings.credential_repositories == ("qgreenland-net/ogdc-recipes", "qgnet/*")
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    assert settings.jwt_secret_key == Secret("jwt-secret-key-of-at-least-32-characters")


def test_every_limit_is_read() -> None:
    limits = {
        "OGDC_GIT_TIMEOUT_SECONDS": ("git_timeout_seconds", 7),
        "OGDC_GIT_LOOKUP_TIMEOUT_SECONDS": ("git_lookup_timeout_seconds", 3),
        "OGDC_GIT_MAX_REFS": ("git_max_refs", 9),
        "OGDC_CLONE_MAX_BYTES": ("clone_max_bytes", 4096),
        "OGDC_CLONE_MAX_FILES": ("clone_max_files", 11),
        "OGDC_GIT_MAX_MEMORY_BYTES": ("git_max_memory_bytes", 64 * 1024 * 1024),
        "OGDC_MAX_RECIPES_PER_PUSH": ("max_recipes_per_push", 2),
        "OGDC_MAX_PROBLEMS": ("max_problems", 5),
        "OGDC_MAX_COMMANDS": ("max_commands", 6),
        "OGDC_MAX_WORKFLOW_TEMPLATES": ("max_workflow_templates", 12),
        "OGDC_MAX_WORKFLOW_BYTES": ("max_workflow_bytes", 20000),
        "OGDC_WEBHOOK_UNVERIFIED_BYTES": ("webhook_unverified_bytes", 30 * 1024 * 1024),
        "OGDC_HTTP_READ_TIMEOUT_SECONDS": ("http_read_timeout_seconds", 4),
    }
    settings = load_settings({name: str(value) for name, (_, value) in limits.items()})
    assert {field: getattr(settings, field) for field, _ in limits.values()} == dict(
        limits.values()
    )


@pytest.mark.parametrize("missing", sorted(REAL_DB.keys() - {"OGDC_DB_HOST"}))
def test_a_real_database_needs_every_secret(missing: str) -> None:
    env = {k: v for k, v in REAL_DB.items() if k != missing}
    with pytest.raises(SettingsError, match=f"^{missing}: required when OGDC_DB_HOST is set$"):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OGDC_DB_PORT", "five", "must be a whole number"),
        ("OGDC_DB_PORT", "0", "must be at least 1"),
        ("OGDC_DB_PORT", "70000", "must be a port number"),
        ("OGDC_MAX_PARALLEL_LIMIT", "0", "must be at least 1"),
        ("ARGO_WORKFLOWS_SERVICE_URL", "argo:2746", "must be an http(s) URL"),
        ("GITHUB_API_URL", "ftp://example", "must be an http(s) URL"),
        ("API_ROOT_PATH", "api", "must start with '/'"),
        ("OGDC_LOG_FORMAT", "xml", "must be one of text, json"),
        ("OGDC_LOG_LEVEL", "loud", "must be one of"),
        ("OGDC_RUN_DEADLINE_HOURS", "two days", "must be a number"),
        ("OGDC_RUN_DEADLINE_HOURS", "0", "must be more than 0"),
        ("OGDC_RUN_DEADLINE_HOURS", "nan", "must be more than 0"),
        ("OGDC_SUBMIT_ALLOWED_HOSTS", "github.com:x", "is not a host or host:port"),
        ("OGDC_SUBMIT_ALLOWED_HOSTS", "https://github.com", "is not a host or host:port"),
        ("OGDC_SUBMIT_ALLOWED_HOSTS", "user@github.com", "is not a host or host:port"),
        ("OGDC_CREDENTIAL_REPOSITORIES", "*/recipes", "is not owner/repo, owner/* or *"),
        ("OGDC_CREDENTIAL_REPOSITORIES", "a/b/c", "is not owner/repo, owner/* or *"),
        ("OGDC_JWT_SECRET_KEY", "short", "must have at least 32 characters"),
        ("OGDC_CLONE_MAX_FILES", "0", "must be at least 1"),
        ("OGDC_WEBHOOK_UNVERIFIED_BYTES", "1024", "must be at least 26214400"),
        ("OGDC_HTTP_READ_TIMEOUT_SECONDS", "soon", "must be a whole number"),
        ("OGDC_RECONCILE_SECONDS", "-1", "must be at least 0"),
        ("OGDC_RECONCILE_LOOKBACK_HOURS", "0", "must be at least 1"),
        ("OGDC_RECONCILE_LOOKBACK_HOURS", "three days", "must be a whole number"),
    ],
)
def test_a_malformed_value_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**REAL_DB, name: value})
    assert str(caught.value).startswith(f"{name}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_github_app_needs_its_private_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^GITHUB_APP_PRIVATE_KEY: required"):
        load_settings({**REAL_DB, "GITHUB_APP_ID": "1"})
    missing = tmp_path / "nope.pem"
    env = {**REAL_DB, "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": str(missing)}
    with pytest.raises(SettingsError, match=r"^GITHUB_APP_PRIVATE_KEY_FILE: cannot read"):
        load_settings(env)
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n...")
    settings = load_settings(
        {**REAL_DB, "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": str(key)}
    )
    assert settings.github_app_private_key == Secret(key.read_text())


def test_secrets_never_show_in_repr_or_str() -> None:
    settings = load_settings({**REAL_DB, "GITHUB_TOKEN": "ghp-value"})
    shown = repr(settings) + str(settings) + str(settings.db_password)
    for secret in ("db-password", "jwt-secret-key-of-at", "admin-password", "ghp-value"):
        assert secret not in shown


def test_development_secrets_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = load_settings({"OGDC_DATA_DIR": str(tmp_path / "data")})
    first, shown = with_development_secrets(settings)
    assert shown is not None and first.admin_password == Secret(shown)
    assert first.jwt_secret_key is not None and len(first.jwt_secret_key.reveal()) >= 32
    stored = tmp_path / "data" / "secrets.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    again, shown_again = with_development_secrets(settings)
    assert shown_again is None  # printed once only
    assert (again.admin_password, again.jwt_secret_key) == (
        first.admin_password,
        first.jwt_secret_key,
    )


def test_given_secrets_win_over_generated_ones(tmp_path: Path) -> None:
    settings = load_settings(
        {"OGDC_DATA_DIR": str(tmp_path), "OGDC_ADMIN_PASSWORD": "mine-and-only-mine"}
    )
    updated, shown = with_development_secrets(settings)
    assert shown is None
    assert updated.admin_password == Secret("mine-and-only-mine")
    assert "mine-and-only-mine" not in (tmp_path / "secrets.json").read_text()


def test_a_real_database_never_gets_generated_secrets(tmp_path: Path) -> None:
    settings = load_settings({**REAL_DB, "OGDC_DATA_DIR": str(tmp_path)})
    assert with_development_secrets(settings) == (settings, None)
    assert not (tmp_path / "secrets.json").exists()


def test_argo_ca_file_must_hold_pem_certificates(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(SettingsError) as no_file:
        load_settings({**REAL_DB, "ARGO_CA_FILE": str(missing)})
    assert str(no_file.value) == f"ARGO_CA_FILE: cannot read {missing}: No such file or directory"
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(SettingsError) as no_pem:
        load_settings({**REAL_DB, "ARGO_CA_FILE": str(not_pem)})
    assert str(no_pem.value) == f"ARGO_CA_FILE: {not_pem} holds no PEM certificate"
    ca_file, _ = private_ca(tmp_path)
    assert load_settings({**REAL_DB, "ARGO_CA_FILE": str(ca_file)}).argo_ca_file == ca_file
    assert load_settings(REAL_DB).argo_ca_file is None


def test_the_run_deadline_may_be_a_fraction_of_an_hour() -> None:
    assert load_settings({**REAL_DB, "OGDC_RUN_DEADLINE_HOURS": "0.5"}).run_deadline_hours == 0.5


def test_single_sign_on_settings_default_as_ogdc_runner() -> None:
    settings = load_settings(REAL_DB)
    assert settings.access_mode == "authenticated"
    assert settings.oidc_client_secrets_file is None  # local users only
    assert settings.scope_admin == "ogdc:admin"
    assert settings.oidc_username_claim == "preferred_username"
    assert settings.oidc_jwks_min_refresh_seconds == 60
    chosen = load_settings(
        {
            **REAL_DB,
            "ACCESS_MODE": "Read_Only",
            "OIDC_CLIENT_SECRETS_FILE": "/etc/ogdc/oidc/client_secrets.json",
            "OGDC_SCOPE_ADMIN": "ogdc:boss",
            "OIDC_USERNAME_CLAIM": "email",
            "OIDC_JWKS_MIN_REFRESH_SECONDS": "0",
        }
    )
    assert chosen.access_mode == "read_only"
    assert chosen.oidc_client_secrets_file == Path("/etc/ogdc/oidc/client_secrets.json")
    assert (chosen.scope_admin, chosen.oidc_username_claim) == ("ogdc:boss", "email")
    assert chosen.oidc_jwks_min_refresh_seconds == 0
    with pytest.raises(SettingsError) as bad:
        load_settings({**REAL_DB, "ACCESS_MODE": "public"})
    assert str(bad.value) == (
        "ACCESS_MODE: must be one of authenticated, read_only, open, got 'public'"
    )


def test_the_oidc_client_file_is_read_as_dataone_auth_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "client_secrets.json"
    client = {
        "server_metadata_url": "https://auth.example/realms/test/.well-known/openid-configuration",
        "client_id": "ogdc-test",
        "client_secret": "not-a-real-secret",
        "redirect_uris": ["https://ogdc.example/api/authorize"],
    }
    path.write_text(json.dumps({**client, "web": "ignored"}))
    assert load_client_secrets(path).model_dump() == client
    with pytest.raises(SettingsError) as missing:
        load_client_secrets(tmp_path / "absent.json")
    assert str(missing.value).startswith("OIDC_CLIENT_SECRETS_FILE: cannot read ")
    path.write_text("{not json")
    with pytest.raises(SettingsError, match=r"is not JSON$"):
        load_client_secrets(path)
    path.write_text(json.dumps({**client, "redirect_uris": [], "client_secret": ""}))
    with pytest.raises(SettingsError) as incomplete:
        load_client_secrets(path)
    assert str(incomplete.value).endswith("wrong or missing: client_secret, redirect_uris")
    assert "not-a-real-secret" not in str(incomplete.value)


def test_one_forgejo_instance_from_its_three_variables() -> None:
    settings = load_settings(
        {
            "FORGEJO_URL": "https://codeberg.org/",
            "FORGEJO_TOKEN": "forgejo-token-value",
            "FORGEJO_WEBHOOK_SECRET": "forgejo-secret-value",
        }
    )
    [instance] = settings.forgejo_instances
    assert (instance.url, instance.host) == ("https://codeberg.org", "codeberg.org")
    assert instance.token is not None and instance.token.reveal() == "forgejo-token-value"
    assert "forgejo-token-value" not in repr(settings)
    assert "forgejo-secret-value" not in repr(settings)


def test_forgejo_instances_from_a_yaml_or_json_file(tmp_path: Path) -> None:
    listed = tmp_path / "forgejo.yml"
    listed.write_text(
        "- url: https://git.example.org/forge\n  webhook_secret: one\n"
        '- {"url": "https://codeberg.org", "token": "t", "webhook_secret": "two"}\n'
    )
    settings = load_settings({"FORGEJO_INSTANCES_FILE": str(listed)})
    assert [i.host for i in settings.forgejo_instances] == ["git.example.org", "codeberg.org"]
    assert settings.forgejo_instances[0].token is None


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("url: https://codeberg.org\n", "must hold a list"),
        ("- url: https://codeberg.org\n", "entry 1: webhook_secret is required"),
        ("- url: ftp://codeberg.org\n  webhook_secret: s3cr3t-value\n", "entry 1: url"),
        ("- {url: https://a.org, webhook_secret: s3cr3t-value, tokn: x}\n", "unknown key"),
        (
            "- {url: https://a.org, webhook_secret: s3cr3t-value}\n"
            "- {url: https://A.org/, webhook_secret: s3cr3t-value}\n",
            "configured twice: a.org",
        ),
        ("- [unclosed\n", "not YAML or JSON"),
    ],
)
def test_a_bad_forgejo_instances_file_names_the_problem(
    tmp_path: Path, content: str, error: str
) -> None:
    listed = tmp_path / "forgejo.yml"
    listed.write_text(content)
    with pytest.raises(SettingsError, match=r"FORGEJO_INSTANCES_FILE|configured twice") as bad:
        load_settings({"FORGEJO_INSTANCES_FILE": str(listed)})
    assert error in str(bad.value)
    assert "s3cr3t-value" not in str(bad.value)


def test_a_forgejo_secret_without_its_url_is_refused() -> None:
    with pytest.raises(SettingsError, match="FORGEJO_WEBHOOK_SECRET: set FORGEJO_URL"):
        load_settings({"FORGEJO_WEBHOOK_SECRET": "x"})
    with pytest.raises(SettingsError, match="FORGEJO_WEBHOOK_SECRET: required with FORGEJO_URL"):
        load_settings({"FORGEJO_URL": "https://codeberg.org"})
