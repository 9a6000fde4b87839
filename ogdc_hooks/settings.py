"""Every environment variable of the service, read once at start into one typed object.

A missing or malformed value stops the start with one line naming the variable
(`SettingsError`). Secrets are wrapped in `Secret` so that printing or logging
the settings never shows them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import yaml

from ogdc_hooks import workflow_settings
from ogdc_hooks.workflow_settings import VizResources

T = TypeVar("T")

# ogdc-runner 0.4.2 (dataone-auth): who may do what without a token (README "Single sign-on")
ACCESS_MODES = ("authenticated", "read_only", "open")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


class StartupError(Exception):
    """The service cannot start; the message says why in one line, with no secret."""


@dataclass(frozen=True)
class Secret:
    """A string that never shows itself in `repr`, `str` or logs."""

    value: str = field(repr=False)

    def reveal(self) -> str:
        return self.value

    def __str__(self) -> str:
        return "**********"

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True)
class ForgejoInstance:
    """One Forgejo or Gitea instance: its base URL (e.g. `https://codeberg.org`, or with a
    path when it is served under one), the token that reports statuses and clones, and the
    secret that signs its webhooks."""

    url: str  # without a trailing slash
    webhook_secret: Secret
    token: Secret | None = None

    @property
    def host(self) -> str:
        """The instance's identity (host[:port], lower case): the key of its users' logins."""
        return urlsplit(self.url).netloc.lower()


@dataclass(frozen=True)
class Settings:
    """The service configuration; see README "Configuration" for each variable."""

    # Database (as ogdc-runner's service names them)
    db_host: str | None = None
    db_port: int = 5432
    db_name: str = "ogdc"
    db_username: str | None = None
    db_password: Secret | None = None
    data_dir: Path = Path(".ogdc-hooks")
    # Authentication (as ogdc-runner's service names them)
    jwt_secret_key: Secret | None = None
    admin_password: Secret | None = None
    # Single sign-on and access (as ogdc-runner 0.4.2 names them; README "Single sign-on")
    access_mode: str = "authenticated"  # authenticated, read_only or open
    oidc_client_secrets_file: Path | None = None  # None: no provider, local users only
    scope_admin: str = "ogdc:admin"
    oidc_username_claim: str = "preferred_username"
    oidc_jwks_min_refresh_seconds: int = 60  # an unknown kid refetches the keys this rarely
    # Workflows (as ogdc-runner names them)
    workflow_pvc_name: str = "cephfs-qgnet-ogdc-workflow-pvc"
    argo_namespace: str = "qgnet"
    argo_service_account_name: str = "argo-workflow"
    argo_workflows_service_url: str | None = None
    argo_token: Secret | None = None
    argo_ca_file: Path | None = None  # CA bundle for an Argo Server with a private CA
    argo_ui_url: str | None = None
    runner_image_tag: str = "latest"
    max_parallel_limit: int = 5
    allowed_input_pvcs: tuple[str, ...] = ()
    # Workflows as ogdc-runner 0.4.2 shapes them (README "Configuration")
    retry_enabled: bool = True
    retry_limit: int = 3
    retry_policy: str = "OnTransientError"
    viz_image: str = "ghcr.io/permafrostdiscoverygateway/pdgworkflow:latest"
    viz_setup_image: str | None = None  # None: the runner image
    viz_resources: VizResources = field(default_factory=VizResources)
    viz_default_partition_size: int = 1000
    dataone_node_url: str = "https://arcticdata.io/metacat/d1/mn"
    api_root_path: str = "/"
    # GitHub
    github_webhook_secret: Secret | None = None
    github_api_url: str = "https://api.github.com"
    github_app_id: str | None = None
    github_app_private_key: Secret | None = None
    github_token: Secret | None = None
    # Forgejo and Gitea (README "Forgejo and Gitea"): FORGEJO_URL, or FORGEJO_INSTANCES_FILE
    forgejo_instances: tuple[ForgejoInstance, ...] = ()
    # Whose authority /submit may borrow (README "Submitting through the API")
    submit_allowed_hosts: tuple[str, ...] = ()  # host[:port]; empty: the forge's web host
    credential_repositories: tuple[str, ...] = ()  # owner/repo, owner/* or *; token mode
    # Where a known user's `/ogdc run` comment submits a pull request (README "Pull requests")
    pr_run_repositories: tuple[str, ...] = ()  # owner/repo, owner/* or *; empty: nowhere
    # Operations
    worker_slots: int = 4  # 0: this replica only takes requests; others do the work
    jobs_per_repository: int = 2  # jobs of one repository running at once, all replicas
    argo_poll_seconds: int = 30
    job_lease_seconds: int = 60  # a dead worker's job is taken over after this
    run_deadline_hours: float = 48.0  # unfinished runs time out (unless activeDeadlineSeconds)
    # A default-branch push stops the still-unfinished older run of each recipe it changes,
    # except in these repositories (owner/repo, owner/* or *): README "Cancel and retry"
    cancel_superseded: bool = True
    keep_superseded_repositories: tuple[str, ...] = ()
    reconcile_seconds: int = 300  # 0: never look for missed deliveries
    reconcile_lookback_hours: int = 72  # GitHub keeps deliveries 3 days (7 on GHES)
    log_format: str = "text"
    log_level: str = "INFO"
    # Big pushes (README "Big pushes and GitHub's write limits")
    github_writes_per_minute: int = 80  # GitHub's secondary limit on content creation
    github_writes_per_hour: int = 500
    summary_check_threshold: int = 20  # more recipes in one push: one summary check
    summary_check_seconds: int = 15  # at most one summary update in this many seconds
    # Bounds on hostile input (README "Limits")
    git_timeout_seconds: int = 120  # one whole checkout (every git call of it)
    git_lookup_timeout_seconds: int = 20  # one ref lookup (inside /submit's request)
    git_max_refs: int = 100_000
    clone_max_bytes: int = 512 * 1024 * 1024
    clone_max_files: int = 100_000
    git_max_memory_bytes: int = 512 * 1024 * 1024  # each git process (RLIMIT_DATA)
    max_recipes_per_push: int = 50
    max_problems: int = 100
    max_commands: int = 500
    max_workflow_templates: int = 1000
    max_workflow_bytes: int = 1024 * 1024  # etcd refuses requests over 1.5 MiB
    webhook_unverified_bytes: int = 64 * 1024 * 1024
    http_read_timeout_seconds: int = 75  # above proxies' upstream keep-alive (nginx: 60 s)
    failure_log_lines: int = 40  # last lines of each failed step's log shown in its check
    # Where people reach this service (README "Failure details"): links to GET /runs/{id}
    public_url: str | None = None

    @property
    def embedded_db(self) -> bool:
        """No database host configured: run PostgreSQL inside `data_dir`."""
        return self.db_host is None

    @property
    def dry_run(self) -> bool:
        """No Argo Server configured: render and store workflows, never submit."""
        return self.argo_workflows_service_url is None

    @property
    def argo_ui_base(self) -> str | None:
        return self.argo_ui_url or self.argo_workflows_service_url

    @property
    def github_app_mode(self) -> bool:
        return self.github_app_id is not None and self.github_app_private_key is not None

    @property
    def github_host(self) -> str:
        """The configured GitHub among forges: the host its users' logins are kept under."""
        return github_host(self.github_api_url)

    @property
    def github_web_url(self) -> str:
        """GitHub's web address for GITHUB_API_URL (github.com, or an Enterprise host)."""
        if self.github_host == "github.com":
            return "https://github.com"
        return f"{urlsplit(self.github_api_url).scheme}://{self.github_host}"

    @property
    def forge_web_urls(self) -> tuple[str, ...]:
        """The web addresses of the configured forges: where submissions fetch by default."""
        return (self.github_web_url, *(instance.url for instance in self.forgejo_instances))


def secret_values(settings: Settings) -> list[str]:
    """The values of every secret setting, for redactors to mask wherever they appear."""
    values = (getattr(settings, item.name) for item in fields(settings))
    return [value.reveal() for value in values if isinstance(value, Secret)]


def listed(patterns: tuple[str, ...], repository: str) -> bool:
    """Whether `owner/repo` is one of `patterns` (`owner/repo`, `owner/*`, `*`), ignoring case."""
    name = repository.lower()
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def github_host(api_url: str) -> str:
    """The host that names the GitHub at `api_url`: github.com for https://api.github.com,
    else the API's own host[:port] (https://ghe.example.com/api/v3: ghe.example.com)."""
    parts = urlsplit(api_url)
    host = (parts.hostname or "").lower()
    if host == "api.github.com":
        return "github.com"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _parsed(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError as err:
        raise SettingsError(f"{name}: {err}") from None


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _at_least(1)
_count = _at_least(0)


def _positive_number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number, got {raw!r}") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"must be more than 0, got {raw}")
    return value


def _port(raw: str) -> int:
    value = _positive_int(raw)
    if value > 65535:
        raise ValueError(f"must be a port number (1-65535), got {value}")
    return value


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


def _root_path(raw: str) -> str:
    if not raw.startswith("/"):
        raise ValueError(f"must start with '/', got {raw!r}")
    return "/" + raw.strip("/") if raw.strip("/") else "/"


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw.lower()

    return parse


def _ca_bundle(raw: str) -> Path:
    """A PEM file of CA certificates; loaded once here so that a bad one stops the start."""
    try:
        ssl.create_default_context(cafile=raw)
    except ssl.SSLError:
        raise ValueError(f"{raw} holds no PEM certificate") from None
    except OSError as err:
        raise ValueError(f"cannot read {raw}: {err.strerror or err}") from None
    return Path(raw)


def _name_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _host_list(raw: str) -> tuple[str, ...]:
    """`host[:port]` entries (IPv6 in brackets), lower-cased."""
    entries = _name_list(raw.lower())
    for entry in entries:
        parts = urlsplit(f"//{entry}")
        try:
            port = parts.port
        except ValueError:
            port = -1
        if not parts.hostname or parts.username or parts.path or port in (-1, 0):
            raise ValueError(f"{entry!r} is not a host or host:port")
    return entries


_REPOSITORY_PATTERN = re.compile(r"\*|[A-Za-z0-9_.-]{1,100}/(\*|[A-Za-z0-9_.-]{1,100})")


def _repository_list(raw: str) -> tuple[str, ...]:
    """`owner/repo`, `owner/*` or `*` entries, lower-cased."""
    entries = _name_list(raw.lower())
    for entry in entries:
        if not _REPOSITORY_PATTERN.fullmatch(entry):
            raise ValueError(f"{entry!r} is not owner/repo, owner/* or *")
    return entries


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    value = env.get(name)
    return Secret(value) if value else None


def _private_key(env: Mapping[str, str]) -> Secret | None:
    inline = _secret(env, "GITHUB_APP_PRIVATE_KEY")
    path = _text(env, "GITHUB_APP_PRIVATE_KEY_FILE")
    if inline is not None or path is None:
        return inline
    try:
        return Secret(Path(path).read_text())
    except OSError as err:
        raise SettingsError(
            f"GITHUB_APP_PRIVATE_KEY_FILE: cannot read {path}: {err.strerror}"
        ) from None


def _forgejo_instance(entry: object, where: str) -> ForgejoInstance:
    """One `{url, token, webhook_secret}`; errors name the entry, never a secret's value."""
    if not isinstance(entry, Mapping):
        raise SettingsError(f"{where}: must be a mapping with url, token and webhook_secret")
    unknown = sorted(str(key) for key in entry if key not in ("url", "token", "webhook_secret"))
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    url, token, secret = entry.get("url"), entry.get("token"), entry.get("webhook_secret")
    if not isinstance(url, str):
        raise SettingsError(f"{where}: url is required")
    try:
        base = _http_url(url.strip())
    except ValueError as err:
        raise SettingsError(f"{where}: url {err}") from None
    if urlsplit(base).query or urlsplit(base).fragment or "@" in urlsplit(base).netloc:
        raise SettingsError(f"{where}: url must be a plain base URL, got {base!r}")
    if not isinstance(secret, str) or not secret:
        raise SettingsError(f"{where}: webhook_secret is required")
    if token is not None and not isinstance(token, str):
        raise SettingsError(f"{where}: token must be a string")
    return ForgejoInstance(base, Secret(secret), Secret(token) if token else None)


def _forgejo_file(path: str) -> list[object]:
    """The entries of FORGEJO_INSTANCES_FILE: a YAML (or JSON, which is YAML) list."""
    name = "FORGEJO_INSTANCES_FILE"
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise SettingsError(f"{name}: cannot read {path}: {err.strerror or err}") from None
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SettingsError(f"{name}: {path} is not YAML or JSON{where}") from None
    if not isinstance(entries, list):
        raise SettingsError(f"{name}: {path} must hold a list of {{url, token, webhook_secret}}")
    return entries


def _forgejo_instances(env: Mapping[str, str]) -> tuple[ForgejoInstance, ...]:
    """FORGEJO_URL with FORGEJO_TOKEN and FORGEJO_WEBHOOK_SECRET, and every entry of
    FORGEJO_INSTANCES_FILE; one instance per host."""
    found: list[ForgejoInstance] = []
    url = _text(env, "FORGEJO_URL")
    if url is not None and not env.get("FORGEJO_WEBHOOK_SECRET"):
        raise SettingsError("FORGEJO_WEBHOOK_SECRET: required with FORGEJO_URL")
    if url is not None:
        found.append(
            _forgejo_instance(
                {
                    "url": url,
                    "token": env.get("FORGEJO_TOKEN") or None,
                    "webhook_secret": env.get("FORGEJO_WEBHOOK_SECRET") or None,
                },
                "FORGEJO_URL",
            )
        )
    else:
        for name in ("FORGEJO_TOKEN", "FORGEJO_WEBHOOK_SECRET"):
            if env.get(name):
                raise SettingsError(f"{name}: set FORGEJO_URL too (the instance it is for)")
    path = _text(env, "FORGEJO_INSTANCES_FILE")
    if path is not None:
        for index, entry in enumerate(_forgejo_file(path)):
            found.append(_forgejo_instance(entry, f"FORGEJO_INSTANCES_FILE: entry {index + 1}"))
    hosts = [instance.host for instance in found]
    twice = sorted({host for host in hosts if hosts.count(host) > 1})
    if twice:
        raise SettingsError(f"Forgejo instance configured twice: {', '.join(twice)}")
    return tuple(found)


def api_root_path(env: Mapping[str, str]) -> str:
    """`API_ROOT_PATH` alone, for commands that need only where the routes are."""
    return _parsed(env, "API_ROOT_PATH", _root_path, "/")


def _default_data_dir(env: Mapping[str, str]) -> Path:
    base = _text(env, "XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ogdc-hooks"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every variable; raise `SettingsError` naming the first bad one."""
    env = os.environ if env is None else env
    settings = Settings(
        db_host=_text(env, "OGDC_DB_HOST"),
        db_port=_parsed(env, "OGDC_DB_PORT", _port, 5432),
        db_name=_text(env, "OGDC_DB_NAME") or "ogdc",
        db_username=_text(env, "OGDC_DB_USERNAME"),
        db_password=_secret(env, "OGDC_DB_PASSWORD"),
        data_dir=Path(_text(env, "OGDC_DATA_DIR") or _default_data_dir(env)),
        jwt_secret_key=_secret(env, "OGDC_JWT_SECRET_KEY"),
        admin_password=_secret(env, "OGDC_ADMIN_PASSWORD"),
        access_mode=_parsed(env, "ACCESS_MODE", _choice(*ACCESS_MODES), Settings.access_mode),
        oidc_client_secrets_file=_parsed(env, "OIDC_CLIENT_SECRETS_FILE", Path, None),
        scope_admin=_text(env, "OGDC_SCOPE_ADMIN") or Settings.scope_admin,
        oidc_username_claim=_text(env, "OIDC_USERNAME_CLAIM") or Settings.oidc_username_claim,
        oidc_jwks_min_refresh_seconds=_parsed(
            env, "OIDC_JWKS_MIN_REFRESH_SECONDS", _count, Settings.oidc_jwks_min_refresh_seconds
        ),
        workflow_pvc_name=_text(env, "OGDC_WORKFLOW_PVC_NAME") or Settings.workflow_pvc_name,
        argo_namespace=_text(env, "ARGO_NAMESPACE") or Settings.argo_namespace,
        argo_service_account_name=(
            _text(env, "ARGO_SERVICE_ACCOUNT_NAME") or Settings.argo_service_account_name
        ),
        argo_workflows_service_url=_parsed(env, "ARGO_WORKFLOWS_SERVICE_URL", _http_url, None),
        argo_token=_secret(env, "ARGO_TOKEN"),
        argo_ca_file=_parsed(env, "ARGO_CA_FILE", _ca_bundle, None),
        argo_ui_url=_parsed(env, "ARGO_UI_URL", _http_url, None),
        runner_image_tag=_text(env, "OGDC_RUNNER_IMAGE_TAG") or Settings.runner_image_tag,
        max_parallel_limit=_parsed(env, "OGDC_MAX_PARALLEL_LIMIT", _positive_int, 5),
        allowed_input_pvcs=_parsed(
            env, "OGDC_ALLOWED_INPUT_PVCS", workflow_settings.claim_names, ()
        ),
        retry_enabled=_parsed(env, "ARGO_WORKFLOW_RETRY_ENABLED", workflow_settings.boolean, True),
        retry_limit=_parsed(env, "ARGO_WORKFLOW_RETRY_LIMIT", _count, 3),
        retry_policy=_parsed(
            env, "ARGO_WORKFLOW_RETRY_POLICY", workflow_settings.retry_policy, "OnTransientError"
        ),
        viz_image=_text(env, "VIZ_WORKFLOW_IMAGE") or Settings.viz_image,
        viz_setup_image=_text(env, "VIZ_WORKFLOW_SETUP_IMAGE"),
        viz_resources=_parsed(
            env, "VIZ_WORKFLOW_RESOURCES", workflow_settings.viz_resources, VizResources()
        ),
        viz_default_partition_size=_parsed(
            env, "VIZ_WORKFLOW_DEFAULT_PARTITION_SIZE", _positive_int, 1000
        ),
        dataone_node_url=_parsed(env, "DATAONE_NODE_URL", _http_url, Settings.dataone_node_url),
        api_root_path=api_root_path(env),
        github_webhook_secret=_secret(env, "GITHUB_WEBHOOK_SECRET"),
        github_api_url=_parsed(env, "GITHUB_API_URL", _http_url, Settings.github_api_url),
        github_app_id=_text(env, "GITHUB_APP_ID"),
        github_app_private_key=_private_key(env),
        github_token=_secret(env, "GITHUB_TOKEN"),
        forgejo_instances=_forgejo_instances(env),
        submit_allowed_hosts=_parsed(env, "OGDC_SUBMIT_ALLOWED_HOSTS", _host_list, ()),
        credential_repositories=_parsed(env, "OGDC_CREDENTIAL_REPOSITORIES", _repository_list, ()),
        pr_run_repositories=_parsed(env, "OGDC_PR_RUN_REPOSITORIES", _repository_list, ()),
        worker_slots=_parsed(env, "OGDC_WORKER_SLOTS", _count, 4),
        jobs_per_repository=_parsed(env, "OGDC_JOBS_PER_REPOSITORY", _positive_int, 2),
        argo_poll_seconds=_parsed(env, "OGDC_ARGO_POLL_SECONDS", _positive_int, 30),
        job_lease_seconds=_parsed(env, "OGDC_JOB_LEASE_SECONDS", _positive_int, 60),
        run_deadline_hours=_parsed(env, "OGDC_RUN_DEADLINE_HOURS", _positive_number, 48.0),
        cancel_superseded=_parsed(env, "OGDC_CANCEL_SUPERSEDED", workflow_settings.boolean, True),
        keep_superseded_repositories=_parsed(
            env, "OGDC_KEEP_SUPERSEDED_REPOSITORIES", _repository_list, ()
        ),
        reconcile_seconds=_parsed(env, "OGDC_RECONCILE_SECONDS", _count, 300),
        reconcile_lookback_hours=_parsed(env, "OGDC_RECONCILE_LOOKBACK_HOURS", _positive_int, 72),
        log_format=_parsed(env, "OGDC_LOG_FORMAT", _choice("text", "json"), "text"),
        log_level=_parsed(
            env, "OGDC_LOG_LEVEL", _choice("debug", "info", "warning", "error"), "info"
        ).upper(),
        github_writes_per_minute=_parsed(env, "OGDC_GITHUB_WRITES_PER_MINUTE", _positive_int, 80),
        github_writes_per_hour=_parsed(env, "OGDC_GITHUB_WRITES_PER_HOUR", _positive_int, 500),
        summary_check_threshold=_parsed(env, "OGDC_SUMMARY_CHECK_THRESHOLD", _positive_int, 20),
        summary_check_seconds=_parsed(env, "OGDC_SUMMARY_CHECK_SECONDS", _positive_int, 15),
        public_url=_parsed(env, "OGDC_PUBLIC_URL", _http_url, None),
        **_limits(env),
    )
    _check_required(settings)
    return settings


_LIMITS = {
    "git_timeout_seconds": ("OGDC_GIT_TIMEOUT_SECONDS", 1),
    "git_lookup_timeout_seconds": ("OGDC_GIT_LOOKUP_TIMEOUT_SECONDS", 1),
    "git_max_refs": ("OGDC_GIT_MAX_REFS", 1),
    "clone_max_bytes": ("OGDC_CLONE_MAX_BYTES", 1024),
    "clone_max_files": ("OGDC_CLONE_MAX_FILES", 1),
    "git_max_memory_bytes": ("OGDC_GIT_MAX_MEMORY_BYTES", 32 * 1024 * 1024),
    "max_recipes_per_push": ("OGDC_MAX_RECIPES_PER_PUSH", 1),
    "max_problems": ("OGDC_MAX_PROBLEMS", 1),
    "max_commands": ("OGDC_MAX_COMMANDS", 1),
    "max_workflow_templates": ("OGDC_MAX_WORKFLOW_TEMPLATES", 10),
    "max_workflow_bytes": ("OGDC_MAX_WORKFLOW_BYTES", 16 * 1024),
    # At least one delivery of GitHub's largest size must fit.
    "webhook_unverified_bytes": ("OGDC_WEBHOOK_UNVERIFIED_BYTES", 25 * 1024 * 1024),
    "http_read_timeout_seconds": ("OGDC_HTTP_READ_TIMEOUT_SECONDS", 1),
    "failure_log_lines": ("OGDC_FAILURE_LOG_LINES", 1),
}


def _limits(env: Mapping[str, str]) -> dict[str, int]:
    """The bounds on hostile input: whole numbers with a floor each, defaults on `Settings`."""
    return {
        name: _parsed(env, variable, _at_least(minimum), getattr(Settings, name))
        for name, (variable, minimum) in _LIMITS.items()
    }


JWT_KEY_MIN = 32  # characters: HS256 wants a key at least as long as its 256-bit hash (RFC 7518)


def _check_required(settings: Settings) -> None:
    """With a real database every secret must be given; embedded mode generates them."""
    key = settings.jwt_secret_key
    if key is not None and len(key.reveal()) < JWT_KEY_MIN:
        raise SettingsError(
            f"OGDC_JWT_SECRET_KEY: must have at least {JWT_KEY_MIN} characters, since it "
            "signs every token; make one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    if settings.github_app_id is not None and settings.github_app_private_key is None:
        raise SettingsError(
            "GITHUB_APP_PRIVATE_KEY: required when GITHUB_APP_ID is set "
            "(or give GITHUB_APP_PRIVATE_KEY_FILE)"
        )
    if settings.embedded_db:
        return
    for name, value in (
        ("OGDC_DB_USERNAME", settings.db_username),
        ("OGDC_DB_PASSWORD", settings.db_password),
        ("OGDC_JWT_SECRET_KEY", settings.jwt_secret_key),
        ("OGDC_ADMIN_PASSWORD", settings.admin_password),
    ):
        if not value:
            raise SettingsError(f"{name}: required when OGDC_DB_HOST is set")


def with_development_secrets(settings: Settings) -> tuple[Settings, str | None]:
    """Fill a missing JWT key or admin password from `data_dir`, generating them once.

    Only for the embedded database. Returns the new settings and the admin
    password when it was generated just now (the caller prints it once).
    """
    if not settings.embedded_db:
        return settings, None
    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    generated_admin = None
    if "jwt_secret_key" not in stored:
        stored["jwt_secret_key"] = secrets.token_urlsafe(48)
    if "admin_password" not in stored:
        stored["admin_password"] = generated_admin = secrets.token_urlsafe(18)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(stored, handle)
    os.chmod(path, 0o600)
    updated = replace(
        settings,
        jwt_secret_key=settings.jwt_secret_key or Secret(stored["jwt_secret_key"]),
        admin_password=settings.admin_password or Secret(stored["admin_password"]),
    )
    shown = generated_admin if settings.admin_password is None else None
    return updated, shown
