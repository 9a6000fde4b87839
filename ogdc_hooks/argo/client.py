"""The Argo Server REST API over aiohttp: lint, submit, read, list, watch, stop and retry
workflows, read their pods' logs, and list the workflow archive.

A thin shell (gidgethub style): each answer becomes data, or an
`ArgoTransientError` (network, timeout, 408/429/5xx: worth retrying) or an
`ArgoPermanentError` (400/401/403/404/409/422: retrying cannot help) carrying
Argo's own message. The bearer token goes into one header and nowhere else: not
into a log line, an error message or an exception's cause.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from ogdc_hooks.argo.phases import output_artifact_node
from ogdc_hooks.jobs.backoff import retry_after_seconds
from ogdc_hooks.jobs.errors import PermanentError, TransientError
from ogdc_hooks.recipes.render.publish import PUBLISHED_ZIP
from ogdc_hooks.redact import without_credentials
from ogdc_hooks.settings import Secret, Settings

log = logging.getLogger(__name__)

_MAX_MESSAGE = 2000
_MAX_EVENT_BYTES = 64 * 1024 * 1024
LOG_LINE_CHARS = 1000  # a longer log line is cut: a check shows the tail of a log, not a dump
# gRPC status codes in Argo's error bodies, as the HTTP status grpc-gateway gives them.
_GRPC_TO_HTTP = {3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 13: 500, 14: 503, 16: 401}


class ArgoError(Exception):
    """The Argo Server could not do what was asked; `status` is the HTTP status, if any, and
    `grpc_code` the gRPC code of Argo's error body, if it had one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.grpc_code: int | None = None
        self.argo_message: str | None = None  # the body's `message`, without our context


class ArgoTransientError(ArgoError, TransientError):
    """Worth retrying: the server is unreachable, slow, overloaded or failing."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ArgoExpiredError(ArgoTransientError):
    """A watch asked to resume from a resourceVersion the server no longer remembers
    (Kubernetes' 410 Gone): list again, and watch from the list's version."""


class ArgoPermanentError(ArgoError, PermanentError):
    """Retrying cannot help: the request or the credentials are wrong."""


class ArgoLintError(ArgoPermanentError):
    """Argo's validator refused the workflow; the message is Argo's, in its words."""


class ArgoNotFoundError(ArgoPermanentError):
    """The workflow (or namespace) does not exist: for a submitted run, it vanished."""


@dataclass(frozen=True)
class WorkflowList:
    """The workflows a list found, and the resourceVersion to watch from after it."""

    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class WorkflowEvent:
    """One line of the workflow-events stream: ADDED, MODIFIED or DELETED, and the workflow."""

    type: str
    workflow: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.workflow.get("metadata", {}).get("name", ""))


def label_selector(labels: Mapping[str, str]) -> str:
    """Kubernetes equality selector (`a=b,c=d`) matching every given label."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def parse_event_line(line: bytes) -> WorkflowEvent | None:
    """One line of the stream as an event; None for keep-alives and empty results.

    grpc-gateway reports an error in the middle of a stream as `{"error": {...}}`;
    that becomes the matching `ArgoError`.
    """
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except ValueError:
        raise ArgoTransientError("the workflow-events stream sent a non-JSON line") from None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("error"), dict):
        raise _stream_error(data)
    result = data.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("object"), dict):
        return None
    return WorkflowEvent(type=str(result.get("type", "")), workflow=result["object"])


def _stream_error(data: Mapping[str, Any]) -> ArgoError:
    """grpc-gateway's `{"error": {...}}` inside a 200 stream, as the matching `ArgoError`."""
    error = data["error"]
    grpc_code = error.get("grpc_code") or error.get("code")
    status = error.get("http_code") or _GRPC_TO_HTTP.get(grpc_code, 500)
    return classify(int(status), _truncate(str(error.get("message") or "stream error")), None)


def parse_log_line(line: bytes) -> tuple[str, str] | None:
    """One line of the workflow-logs stream as (pod name, content); None for keep-alives.

    `GET .../log` streams `{"result": {"content", "podName"}}` (argo-workflows
    `pkg/apiclient/workflow/workflow.proto` `LogEntry`); an error after the stream
    began arrives as `{"error": {...}}` and becomes the matching `ArgoError`.
    """
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except ValueError:
        raise ArgoTransientError("the workflow-logs stream sent a non-JSON line") from None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("error"), dict):
        raise _stream_error(data)
    result = data.get("result")
    if not isinstance(result, dict):
        return None
    content = str(result.get("content") or "")
    if len(content) > LOG_LINE_CHARS:
        content = content[: LOG_LINE_CHARS - 1] + "…"
    return str(result.get("podName") or ""), content


def group_log_lines(stream: bytes, *, complete: bool) -> dict[str, list[str]]:
    """The contents of a workflow-logs stream, by pod; a cut stream's last line is dropped."""
    lines = stream.split(b"\n")
    if not complete:
        lines.pop()
    grouped: dict[str, list[str]] = {}
    for line in lines:
        if (entry := parse_log_line(line)) is not None:
            grouped.setdefault(entry[0], []).append(entry[1])
    return grouped


def already_completed(error: ArgoError) -> bool:
    """Argo refused a stop because the workflow had completed (`AlreadyShutdownError`)."""
    return "cannot shutdown a completed workflow" in str(error)


# Kubernetes' words for a 410 Gone watch ("too old resource version: 5 (10)" from the watch
# cache, the other from etcd); the Argo Server passes them on as HTTP 400
# (`server/utils/errors.go` `ToStatusError` maps 410 to InvalidArgument).
_EXPIRED = re.compile(
    r"too old resource version|resourceVersion for the provided watch is too old", re.I
)


def classify(status: int, message: str, retry_after: float | None) -> ArgoError:
    """The error for an HTTP status: 408, 429 and 5xx are transient, other 4xx permanent;
    a watch from a forgotten resourceVersion (410, whatever the status says) is expired."""
    if status == 410 or _EXPIRED.search(message):
        return ArgoExpiredError(message, status=status)
    if status in (408, 429) or status >= 500:
        return ArgoTransientError(message, status=status, retry_after=retry_after)
    if status == 404:
        return ArgoNotFoundError(message, status=status)
    return ArgoPermanentError(message, status=status)


class ArgoClient:
    """One Argo Server and namespace, through a caller-owned `aiohttp.ClientSession`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        namespace: str,
        token: Secret | str | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        request_timeout_s: float = 30.0,
        stream_idle_timeout_s: float = 120.0,
        record: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        """`record` hears the outcome of every call: `ok`, `transient` or `permanent`."""
        self._record = record
        self._session = session
        self._ssl: ssl.SSLContext | bool = ssl_context or True  # True: the system's CAs
        self._base_url = base_url.rstrip("/")
        self.namespace = namespace
        self._token = token if isinstance(token, Secret) or token is None else Secret(token)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=request_timeout_s, sock_read=stream_idle_timeout_s
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        session: aiohttp.ClientSession,
        record: Callable[[str], None] = lambda outcome: None,
    ) -> ArgoClient:
        """The client for `ARGO_WORKFLOWS_SERVICE_URL`; not for a dry run (no server).

        Made once at start: it reads `ARGO_CA_FILE`, when that is set."""
        if settings.argo_workflows_service_url is None:
            raise ValueError("no Argo Server configured (ARGO_WORKFLOWS_SERVICE_URL): dry run")
        ca_file = settings.argo_ca_file
        return cls(
            session,
            settings.argo_workflows_service_url,
            settings.argo_namespace,
            settings.argo_token,
            ssl_context=ssl.create_default_context(cafile=ca_file) if ca_file else None,
            record=record,
        )

    async def lint(self, workflow: Mapping[str, Any]) -> None:
        """Have the server's validator check the workflow; `ArgoLintError` says what is wrong.

        `LintWorkflow` (server/workflow/workflow_server.go) returns the validator's
        error without a gRPC status, so grpc-gateway answers it as `Unknown`: HTTP
        500 with `{"code": 2, "message": ...}`. That answer (and a 400) is a verdict
        on the workflow; 500 with another code, 502-504 and no answer stay transient.
        """
        url = self._api("workflows", "lint")
        body = {"namespace": self.namespace, "workflow": workflow}
        try:
            await self._send("POST", url, "lint the workflow", params=None, body=body)
        except ArgoError as err:
            raise self._counted(_as_lint_error(err)) from None
        self._record("ok")

    async def submit(self, workflow: Mapping[str, Any]) -> str:
        """Create the workflow; return the name Argo gave it (from `generateName`).

        A transient error does not prove that nothing was created: the caller
        looks for its run's label before submitting again.
        """
        created = await self._json(
            "POST", self._api("workflows"), "create a workflow", body={"workflow": workflow}
        )
        name = created.get("metadata", {}).get("name") if isinstance(created, dict) else None
        if not name:
            raise ArgoPermanentError("the Argo Server created a workflow but returned no name")
        return str(name)

    async def get(self, name: str) -> dict[str, Any]:
        """The workflow `name`; `ArgoNotFoundError` when it does not exist (any more)."""
        found = await self._json("GET", self._api("workflows", name), f"get workflow {name}")
        if not isinstance(found, dict):
            raise ArgoPermanentError(f"get workflow {name}: the answer is not a workflow")
        return found

    async def list_by_labels(self, labels: Mapping[str, str] | str) -> list[dict[str, Any]]:
        """Every workflow of the namespace carrying these labels (a selector string also works)."""
        return (await self.list_workflows(labels)).items

    async def list_workflows(
        self, labels: Mapping[str, str] | str, fields: Sequence[str] = ()
    ) -> WorkflowList:
        """The workflows carrying these labels, only the `fields` of each when given (Argo's
        `fields` parameter: `items.status.phase`, ...), and the list's resourceVersion."""
        selector = labels if isinstance(labels, str) else label_selector(labels)
        params = {"listOptions.labelSelector": selector}
        if fields:
            params["fields"] = ",".join(["metadata.resourceVersion", *fields])
        found = await self._json(
            "GET", self._api("workflows"), f"list workflows with labels {selector}", params=params
        )
        found = found if isinstance(found, dict) else {}
        items = [item for item in found.get("items") or () if isinstance(item, dict)]  # or null
        version = (found.get("metadata") or {}).get("resourceVersion")
        return WorkflowList(items, str(version or ""))

    async def list_archived(self, labels: Mapping[str, str] | str) -> list[dict[str, Any]]:
        """The namespace's archived workflows carrying these labels, newest first.

        Argo's archive (`GET /api/v1/archived-workflows`) keeps completed workflows
        after their TTL deleted them; its items hold metadata and the status
        summary (phase, message, times), not the nodes.
        """
        selector = labels if isinstance(labels, str) else label_selector(labels)
        found = await self._json(
            "GET",
            self._url("api", "v1", "archived-workflows"),
            f"list archived workflows with labels {selector}",
            params={"namespace": self.namespace, "listOptions.labelSelector": selector},
        )
        items = found.get("items") if isinstance(found, dict) else None
        return [item for item in items or () if isinstance(item, dict)]

    async def stop(self, name: str, message: str) -> None:
        """Ask Argo to stop the workflow (`spec.shutdown: Stop`: no new steps, exit handlers run).

        `ArgoNotFoundError` when it does not exist; Argo refuses a completed
        workflow with an error saying so (see `already_completed`).
        """
        await self._json(
            "PUT",
            self._api("workflows", name, "stop"),
            f"stop workflow {name}",
            body={"name": name, "namespace": self.namespace, "message": message},
        )

    async def retry(self, name: str) -> None:
        """Ask Argo to run a failed workflow's failed steps again (`PUT .../retry` with
        `restartSuccessful: false`: succeeded steps keep their results, the phase goes back
        to Running). Argo refuses a workflow that is not Failed or Error (400, "Cannot retry
        a workflow in phase ..."); `ArgoNotFoundError` when it no longer exists."""
        await self._json(
            "PUT",
            self._api("workflows", name, "retry"),
            f"retry workflow {name}",
            body={"name": name, "namespace": self.namespace, "restartSuccessful": False},
        )

    async def watch(
        self,
        labels: Mapping[str, str] | str,
        resource_version: str | None = None,
        fields: Sequence[str] = (),
    ) -> AsyncIterator[WorkflowEvent]:
        """Workflow events for these labels: without `resource_version`, first every match
        as ADDED, then each change; with it, exactly the changes after that version
        (`ArgoExpiredError` when the server has forgotten it). `fields` trims each object
        (`metadata.name`, ...).

        Ends when the server closes the stream; reconnecting (and resynchronising
        with `list_workflows`) is the caller's business. Silence longer than
        `stream_idle_timeout_s` is a transient error.
        """
        selector = labels if isinstance(labels, str) else label_selector(labels)
        what = f"watch workflows with labels {selector}"
        url = self._url("api", "v1", "workflow-events", self.namespace)
        params = {"listOptions.labelSelector": selector}
        if resource_version:
            params["listOptions.resourceVersion"] = resource_version
        if fields:
            params["fields"] = ",".join(["result.type", *(f"result.object.{f}" for f in fields)])
        try:
            async with self._session.get(
                url,
                headers=self._headers(),
                params=params,
                timeout=self._stream_timeout,
                ssl=self._ssl,
            ) as response:
                log.debug("argo GET %s -> %s (stream)", url, response.status)
                if response.status >= 400:
                    raise self._counted(await self._failure(response, what))
                self._record("ok")
                pending = bytearray()
                async for chunk in response.content.iter_any():
                    pending += chunk
                    while (end := pending.find(b"\n")) >= 0:
                        line = bytes(pending[:end])
                        del pending[: end + 1]
                        if (event := parse_event_line(line)) is not None:
                            yield event
                    if len(pending) > _MAX_EVENT_BYTES:
                        raise ArgoTransientError(f"{what}: an event is larger than 64 MiB")
                if (event := parse_event_line(bytes(pending))) is not None:
                    yield event
        except (aiohttp.ClientError, TimeoutError) as err:
            raise self._counted(self._unreachable(what, err)) from None

    async def pod_logs(
        self,
        name: str,
        pod: str,
        *,
        tail_lines: int,
        container: str = "main",
        max_bytes: int = 256 * 1024,
        timeout_s: float = 30.0,
    ) -> dict[str, list[str]]:
        """The last `tail_lines` lines of one pod's `container` log, grouped by pod name.

        `GET /api/v1/workflows/{ns}/{name}/log` (argo-workflows `server/workflow/
        workflow_server.go` `WorkflowLogs`, `util/logs/workflow-logger.go`): the pod is
        selected by `podName`, Kubernetes' `PodLogOptions` travel as `logOptions.*`. A pod
        that no longer exists yields no entries (the server's pod list is empty), so it is
        missing from the answer. Reading stops after `max_bytes` (also sent as
        `logOptions.limitBytes`) or `timeout_s`, keeping what came.
        """
        what = f"read the log of pod {pod} of workflow {name}"
        params = {
            "podName": pod,
            "logOptions.container": container,
            "logOptions.tailLines": str(tail_lines),
            "logOptions.limitBytes": str(max_bytes),
        }
        body, complete = bytearray(), False
        try:
            async with self._session.get(
                self._api("workflows", name, "log"),
                headers=self._headers(),
                params=params,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                ssl=self._ssl,
            ) as response:
                if response.status >= 400:
                    raise await self._failure(response, what)
                async for chunk in response.content.iter_any():
                    body += chunk
                    if len(body) > max_bytes:
                        break
                else:
                    complete = True
            grouped = group_log_lines(bytes(body[:max_bytes]), complete=complete)
        except ArgoError as err:
            raise self._counted(err) from None
        except (aiohttp.ClientError, TimeoutError) as err:
            if not body:
                raise self._counted(self._unreachable(what, err)) from None
            grouped = group_log_lines(bytes(body[:max_bytes]), complete=False)  # what came
        self._record("ok")
        return {pod_name: found[-tail_lines:] for pod_name, found in grouped.items()}

    def artifact_url(self, name: str, node_id: str, artifact_name: str = PUBLISHED_ZIP) -> str:
        """Where the Argo Server serves an output artifact (needs the same bearer token)."""
        return self._url("artifacts", self.namespace, name, node_id, artifact_name)

    async def output_url(self, name: str, artifact_name: str = PUBLISHED_ZIP) -> str:
        """The download URL of a workflow's output artifact (a `temporary` output's zip)."""
        node_id = output_artifact_node(await self.get(name), artifact_name)
        if node_id is None:
            raise ArgoNotFoundError(f"workflow {name} has no output artifact {artifact_name!r}")
        return self.artifact_url(name, node_id, artifact_name)

    def _api(self, *parts: str) -> str:
        return self._url("api", "v1", parts[0], self.namespace, *parts[1:])

    def _url(self, *parts: str) -> str:
        return "/".join([self._base_url, *(quote(part, safe="") for part in parts)])

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            token = self._token.reveal()
            # `argo auth token` prints "Bearer ..."; accept the token with or without it.
            has_scheme = token[:7].lower() == "bearer "
            headers["Authorization"] = token if has_scheme else f"Bearer {token}"
        return headers

    def _counted(self, error: ArgoError) -> ArgoError:
        self._record("transient" if isinstance(error, ArgoTransientError) else "permanent")
        return error

    async def _json(
        self,
        method: str,
        url: str,
        what: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """One request's JSON answer; its outcome is recorded."""
        try:
            answer = await self._send(method, url, what, params=params, body=body)
        except ArgoError as err:
            raise self._counted(err) from None
        self._record("ok")
        return answer

    async def _send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> Any:
        try:
            async with self._session.request(
                method,
                url,
                headers=self._headers(),
                params=params,
                json=body,
                timeout=self._timeout,
                ssl=self._ssl,
            ) as response:
                log.debug("argo %s %s -> %s", method, url, response.status)
                if response.status >= 400:
                    raise await self._failure(response, what)
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise self._unreachable(what, err) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ArgoPermanentError(
                f"{what}: the answer of {self._shown_base()} is not JSON; is it an Argo Server?"
            ) from None

    async def _failure(self, response: aiohttp.ClientResponse, what: str) -> ArgoError:
        try:
            raw = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            raw = b""
        body = _error_body(raw)
        message = self._shown(str(body.get("message") or "")) if body else ""
        shown = message or self._shown(raw.decode("utf-8", "replace"))
        error = classify(
            response.status,
            f"{what}: Argo Server answered {response.status}: "
            f"{shown or response.reason or 'no message'}",
            retry_after_seconds(response.headers.get("Retry-After"), now=time.time()),
        )
        code = body.get("code") if body else None
        error.grpc_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        error.argo_message = message or None
        return error

    def _shown(self, text: str) -> str:
        """Argo's text as we may show it: stripped, without our token, at most 2000 characters."""
        text = text.strip()
        if self._token:
            text = text.replace(self._token.reveal(), "**********")
        return _truncate(text)

    def _unreachable(self, what: str, err: BaseException) -> ArgoTransientError:
        reason = str(err) or type(err).__name__
        if isinstance(err, TimeoutError):
            reason = "no answer in time"
        where = self._shown_base()
        return ArgoTransientError(f"{what}: cannot reach the Argo Server at {where}: {reason}")

    def _shown_base(self) -> str:
        """The server URL without any user information it might carry."""
        return without_credentials(self._base_url)


def _error_body(raw: bytes) -> dict[str, Any] | None:
    """grpc-gateway's error body `{"code", "message", "details"}`, when the answer is one."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# gRPC codes the lint route answers a refused workflow with: Unknown (the validator's own
# errors, which carry no status; HTTP 500) and InvalidArgument (HTTP 400).
_LINT_VERDICTS = {2, 3}


def _as_lint_error(error: ArgoError) -> ArgoError:
    """A verdict on the workflow becomes `ArgoLintError`; anything else stays as it was."""
    if error.status in (400, 500) and error.grpc_code in _LINT_VERDICTS and error.argo_message:
        return ArgoLintError(error.argo_message, status=error.status)
    return error


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
