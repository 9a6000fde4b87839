"""The Argo Server REST API over aiohttp: submit, read, list, watch and stop workflows, and
list the workflow archive.

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
# gRPC status codes in Argo's error bodies, as the HTTP status grpc-gateway gives them.
_GRPC_TO_HTTP = {3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 13: 500, 14: 503, 16: 401}


class ArgoError(Exception):
    """The Argo Server could not do what was asked; `status` is the HTTP status, if any."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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
        error = data["error"]
        grpc_code = error.get("grpc_code") or error.get("code")
        status = error.get("http_code") or _GRPC_TO_HTTP.get(grpc_code, 500)
        raise classify(int(status), _truncate(str(error.get("message") or "stream error")), None)
    result = data.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("object"), dict):
        return None
    return WorkflowEvent(type=str(result.get("type", "")), workflow=result["object"])


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
        return classify(
            response.status,
            f"{what}: Argo Server answered {response.status}: {self._message(raw, response)}",
            retry_after_seconds(response.headers.get("Retry-After"), now=time.time()),
        )

    def _message(self, raw: bytes, response: aiohttp.ClientResponse) -> str:
        text = raw.decode("utf-8", "replace")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("message"):
            text = str(data["message"])
        text = text.strip() or (response.reason or "no message")
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


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
