"""A fake Argo Server: a real aiohttp server that checks requests the way Argo does.

It speaks the REST API that ogdc-hooks uses: lint (`POST
/api/v1/workflows/{ns}/lint` with `{"namespace", "workflow"}`), create (`POST
/api/v1/workflows/{ns}` with `{"workflow": ...}`), get, list and watch by label
selector (`/api/v1/workflow-events/{ns}`, newline-delimited JSON), stop, the
workflow archive, and output artifacts. Every request needs the bearer token
and the namespace the token is good for. Every created workflow is validated
against Argo's official JSON schema and the checks the real server makes at
creation (`tests/fakes/argo_validate.py`, ported from `workflow/validate/validate.go`);
failures are 400 with `{"code", "message"}` as Argo's grpc-gateway answers them.

Lint (`server/workflow/workflow_server.go` `LintWorkflow`) runs the same
validator with `Opts{Lint: true}` and returns its error without a gRPC status,
which grpc-gateway (`runtime.DefaultHTTPProtoErrorHandler`) answers as
`codes.Unknown`: HTTP 500 `{"code": 2, "message": ...}`; a valid workflow is
answered as it was sent. A schema violation is a JSON decoding error before the
handler: 400 InvalidArgument.

Stop and the archive follow argo-workflows' sources:

- `PUT /api/v1/workflows/{ns}/{name}/stop` (`server/workflow/workflow_server.go`
  `StopWorkflow`, `workflow/util/util.go` `patchShutdownStrategy`): a missing
  workflow is 404; a completed one is refused with `AlreadyShutdownError`,
  "cannot shutdown a completed workflow: workflow: "NAME", namespace: "NS"",
  which the server wraps as `codes.Internal` (HTTP 500); otherwise it merges
  `spec.shutdown: Stop` (a Kubernetes `patch`, refused 403 to a token whose
  Role lacks that verb: `FakeArgo(forbidden=("patch",))`) and answers the
  workflow. The controller then fails the workflow with "Stopped with strategy
  'Stop'" (`workflow/controller/operator.go`), which this fake does at once.
- Archiving (`workflow/controller/operator.go` `persistUpdates`, with
  `persistence.archive` on): a workflow is written to the archive when it
  completes, and the live one gets `workflows.argoproj.io/workflow-archiving-status`.
  `expire` is the TTL controller (`workflow/gccontroller`): it only deletes
  completed workflows; the archived copy stays.
- `GET /api/v1/archived-workflows` (`server/workflowarchive/archived_workflow_server.go`
  `ListArchivedWorkflows`, `persist/sqldb/workflow_archive.go` `ListWorkflows`):
  `namespace` and `listOptions.labelSelector` filter; the caller needs the right
  to list workflows in that namespace (none given means every namespace, refused
  to a namespaced token with "Permission denied, ..."); `listOptions.continue`
  must be a whole number; an unparsable selector is 400. Items carry only
  metadata (name, namespace, uid, creationTimestamp, labels with the archiving
  status `Persisted`, annotations) and status (phase, startedAt, finishedAt,
  progress, message, estimatedDuration, resourcesDuration), newest first.

Retry follows `server/workflow/workflow_server.go` `RetryWorkflow` and
`workflow/util/util.go` `FormulateRetryWorkflow` / `createNewRetryWorkflow`:
`PUT /api/v1/workflows/{ns}/{name}/retry` with `{name, namespace, restartSuccessful,
nodeFieldSelector}`; a missing workflow is 404; a phase other than Failed or Error is
refused with `CodeBadRequest` (HTTP 400): "Cannot retry a workflow in phase PHASE", and a
Succeeded one without `restartSuccessful` and `nodeFieldSelector` with "To retry a
succeeded workflow, set the options restartSuccessful and nodeFieldSelector"; the update
is refused 403 to a token whose Role lacks `update` (`forbidden=("update",)`). Otherwise
every Failed or Error node is deleted with its children (its pod is deleted too), the
group nodes above it (Steps, DAG, StepGroup, TaskGroup, Retry) are reset to Running with
no message and no finish time, succeeded nodes stay as they were (`restartSuccessful:
false`), `.onExit` nodes go, and the workflow is Running again: phase and phase label
Running, no message, no finish time, a new start time, the `completed` and archiving
labels removed, `spec.shutdown` cleared.

Pod logs (`GET /api/v1/workflows/{ns}/{name}/log`, `server/workflow/workflow_server.go`
`WorkflowLogs` -> `PodLogs`, `util/logs/workflow-logger.go`): the workflow must exist (live
or archived: `getWorkflow` falls back to the archive) else 404 before the stream; then a 200
stream of `{"result": {"content", "podName"}}` lines, one per log line, for the pods the
`podName` field selector finds (one whose pod is gone finds none: an empty stream), with
Kubernetes' `PodLogOptions` from `logOptions.*` (`container` must be the pod's, else
Kubernetes refuses it and the logger skips the pod; `tailLines`, `limitBytes`). A workflow
only archived has no live object for `WorkflowLogs`' own `Get`, so its error comes inside the
200 stream as grpc-gateway writes one, `{"error": {"grpc_code", "http_code", "http_status",
"message"}}` (`grpc.gateway.runtime.StreamError` in the swagger); `break_next_log_stream`
asks for such an error after the entries. `fail_step` gives a workflow a failed step node
as the controller writes each failure class (`NODE_FAILURES`), with its pod's log.

List and watch follow Kubernetes' semantics as the Argo Server passes them on
(`server/workflow/workflow_server.go` `ListWorkflows`, `WatchWorkflows`; Kubernetes
"Efficient detection of changes" and "Semantics for watch",
https://kubernetes.io/docs/reference/using-api/api-concepts/): every change gives the
workflow a new `metadata.resourceVersion` and the list carries the newest; a watch
without `listOptions.resourceVersion` (or with "0") starts with every match as ADDED,
one with a version sends exactly the changes after it. The fake remembers the last
`history` changes (the API server's watch cache); a watch from an older version ends
at once with the error the Argo Server streams for Kubernetes' 410 Gone, "too old
resource version" (`apierr.FromObject`, then `sutils.ToStatusError`: 410 is not in its
map, so InvalidArgument, HTTP 400). `fields` trims list items and watched objects to the
paths named, as the server's `fields.NewCleaner` does (the watch's paths carry the
`result.object.` prefix).

The test drives the workflow controller's part: `set_phase`, `fail_step`, `set_nodes`,
`add_output_artifact`, `delete`, `expire`, `put` (a workflow as the controller left it,
for benchmarks), and outages (`fail_next`, `drop_next`, `slow_next`, `close_streams`).
The server runs in its own thread; every method here is safe to call from the
test, synchronous or async.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import functools
import json
import random
import re
import ssl
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from tests.fakes.argo_validate import Invalid, validate_workflow
from tests.support.data import ARGO_SCHEMA
from tests.support.server_thread import ServerThread

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Error")
FINISHED = ("Succeeded", "Failed", "Error")
# A node's phases (argo-workflows `pkg/apis/workflow/v1alpha1/workflow_types.go`, NodePhase).
NODE_PHASES = ("Pending", "Running", "Succeeded", "Skipped", "Failed", "Error", "Omitted")
# Kubernetes' alphabet for generateName suffixes (no vowels, no confusable digits).
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14, 504: 4}
ARCHIVING_LABEL = "workflows.argoproj.io/workflow-archiving-status"
_ARCHIVED_STATUS = (
    "phase",
    "startedAt",
    "finishedAt",
    "progress",
    "message",
    "estimatedDuration",
    "resourcesDuration",
)


# What the controller writes on a failed step's node (phase, message) per failure class,
# from argo-workflows `workflow/controller/operator.go`: `inferFailedReason` (a main container
# that terminated: "main: <reason> (exit code N)"; a pod that failed before main started:
# "Pod failed before main container starts due to <reason>: <message>"; a pod's own message,
# as the kubelet's eviction one), `podReconciliation` ("pod deleted") and
# `failSuspendedAndPendingNodesAfterDeadline` ("Step exceeded its deadline").
NODE_FAILURES = {
    "oom": ("Failed", "main: OOMKilled (exit code 137)"),
    "exit": ("Failed", "main: Error (exit code {exit_code})"),
    "image": (
        "Error",
        "Pod failed before main container starts due to ImagePullBackOff: Back-off pulling "
        'image "ghcr.io/qgreenland-net/ogdc-runner:no-such-tag"',
    ),
    "deadline": ("Failed", "Step exceeded its deadline"),
    "deleted": ("Error", "pod deleted"),
    "evicted": (
        "Failed",
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 88Mi. "
        "Container main was using 5Gi, request is 2Gi, has larger consumption of memory.",
    ),
}


def pod_name(workflow: str, template: str, node_name: str) -> str:
    """A v2 pod name (`workflow/util/pod_name.go` `GeneratePodName`): FNV-1a of the node name."""
    value = 0x811C9DC5
    for byte in node_name.encode():
        value = ((value ^ byte) * 0x01000193) % 2**32
    return f"{workflow}-{template}-{value}"


@dataclass(frozen=True)
class RecordedRequest:
    """What the fake received (never the token itself: only whether it was right)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    token_ok: bool


@dataclass(eq=False)
class _Stream:
    selector: list[tuple[str, str, str]]
    fields: str = ""
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    def event(self, kind: str, workflow: Any) -> bytes:
        return _event(kind, cleaned(workflow, self.fields))

    def change(self, before: Any, after: Any) -> bytes | None:
        """A change as a Kubernetes watch with a selector tells it: entering the selection
        is ADDED, leaving it (or deletion) DELETED, changing within it MODIFIED."""
        was = before is not None and matches(self.selector, before)
        now = after is not None and matches(self.selector, after)
        if was and now:
            return self.event("MODIFIED", after)
        if now:
            return self.event("ADDED", after)
        if was:
            return self.event("DELETED", before)
        return None


class ArgoError(Exception):
    """An answer `{code, message}` with an HTTP status, as grpc-gateway sends errors."""

    def __init__(self, status: int, message: str, *, grpc_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.grpc_code = grpc_code

    def response(self) -> web.Response:
        code = self.grpc_code if self.grpc_code is not None else _GRPC_CODES.get(self.status, 2)
        return web.json_response({"code": code, "message": str(self)}, status=self.status)


@functools.cache
def workflow_validator() -> Draft202012Validator:
    """Argo's official Workflow schema, its `$ref`s resolved within the file; compiled once."""
    schema = json.loads(ARGO_SCHEMA.read_text())
    return Draft202012Validator(
        {
            "$ref": "#/definitions/io.argoproj.workflow.v1alpha1.Workflow",
            "definitions": schema["definitions"],
        }
    )


def schema_problems(workflow: Any) -> list[str]:
    """Each place where `workflow` breaks the schema, as `path: message`, most relevant first."""
    errors = sorted(workflow_validator().iter_errors(workflow), key=_relevance)
    return [f"{_json_path(error)}: {error.message}" for error in errors]


def _relevance(error: ValidationError) -> tuple[int, list[str]]:
    return (-len(error.absolute_path), [str(part) for part in error.absolute_path])


def _json_path(error: ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "(root)"


def label_problems(labels: Any) -> list[str]:
    """Kubernetes' rules for label keys (optional DNS prefix, name) and values (63 chars)."""
    problems = []
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
            problems.append(
                f'metadata.labels: Invalid value: "{key}": prefix part must be a '
                "lowercase RFC 1123 subdomain"
            )
        if len(name) > 63 or not _LABEL_NAME.match(name):
            problems.append(
                f'metadata.labels: Invalid value: "{key}": name part must consist of '
                "alphanumeric characters, '-', '_' or '.', start and end with an "
                "alphanumeric character, and be at most 63 characters"
            )
        if (
            not isinstance(value, str)
            or len(value) > 63
            or (value and not _LABEL_NAME.match(value))
        ):
            problems.append(
                f'metadata.labels: Invalid value: "{value}": a valid label must be an '
                "empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "start and end with an alphanumeric character, and be at most 63 "
                "characters"
            )
    return problems


def parse_selector(text: str) -> list[tuple[str, str, str]]:
    """Equality-based selectors: `a=b`, `a==b`, `a!=b`, `a` (exists), `!a` (absent)."""
    requirements = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        if match := re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*([^!=\s]*)", part):
            key, op, value = match.groups()
            requirements.append((key, "!=" if op == "!=" else "=", value))
        elif re.fullmatch(r"!?[A-Za-z0-9./_-]+", part):
            requirements.append((part.lstrip("!"), "!" if part.startswith("!") else "exists", ""))
        else:
            raise ArgoError(400, f"unable to parse requirement: {part!r}")
    return requirements


def matches(selector: list[tuple[str, str, str]], workflow: Mapping[str, Any]) -> bool:
    labels = workflow.get("metadata", {}).get("labels") or {}
    for key, op, value in selector:
        ok = {
            "=": labels.get(key) == value,
            "!=": labels.get(key) != value,
            "exists": key in labels,
            "!": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeArgo:
    """The fake server's state and the test's controls; start with `start()` or the fixture."""

    def __init__(
        self,
        *,
        token: str = "argo-test-token",
        namespace: str = "qgnet",
        keepalive_s: float = 0.5,
        ssl_context: ssl.SSLContext | None = None,  # serve https with this certificate
        archive: bool = True,  # the controller's `persistence.archive`
        forbidden: tuple[str, ...] = (),  # Kubernetes verbs the token's Role lacks
        history: int = 1000,  # changes a watch can resume from (the watch cache's window)
    ) -> None:
        self.token = token
        self.forbidden = forbidden
        self.archive_enabled = archive
        self._archive: dict[str, dict[str, Any]] = {}  # by uid, in the order archived
        self.ssl_context = ssl_context
        self.namespace = namespace
        self.keepalive_s = keepalive_s
        self._workflows: dict[str, dict[str, Any]] = {}
        self._artifacts: dict[tuple[str, str, str], bytes] = {}
        self._created: list[str] = []
        self._requests: list[RecordedRequest] = []
        self._streams: set[_Stream] = set()
        self._failures: list[int] = []
        self._lint_faults: list[ArgoError] = []
        self._drops = 0
        self._lost_creates = 0
        self._delays: list[float] = []
        self._version = 0
        self._history: collections.deque[tuple[int, Any, Any]] = collections.deque(maxlen=history)
        self._server: ServerThread | None = None
        self._pod_logs: dict[tuple[str, str], list[str]] = {}  # (workflow, pod) -> main's log
        self._log_stream_errors: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeArgo:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/api/v1/workflows/{namespace}", self._create)
        app.router.add_post("/api/v1/workflows/{namespace}/lint", self._lint)
        app.router.add_get("/api/v1/workflows/{namespace}", self._list)
        app.router.add_get("/api/v1/workflows/{namespace}/{name}", self._get)
        app.router.add_put("/api/v1/workflows/{namespace}/{name}/stop", self._stop)
        app.router.add_put("/api/v1/workflows/{namespace}/{name}/retry", self._retry)
        app.router.add_get("/api/v1/workflows/{namespace}/{name}/log", self._logs)
        app.router.add_get("/api/v1/archived-workflows", self._list_archived)
        app.router.add_get("/api/v1/workflow-events/{namespace}", self._watch)
        app.router.add_get("/artifacts/{namespace}/{name}/{node}/{artifact}", self._artifact)
        app.router.add_get(
            "/artifact-files/{namespace}/workflow/{name}/{node}/outputs/{artifact}", self._artifact
        )
        app.on_shutdown.append(self._end_streams)
        self._server = ServerThread(app, self.ssl_context)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return self._server.url

    def _call(self, fn: Any) -> Any:
        assert self._server is not None, "start() the fake first"
        return self._server.call(fn)

    # -- what the test reads -----------------------------------------------------------------

    @property
    def created(self) -> list[str]:
        """Names of the workflows created, in order (deleted ones included)."""
        return list(self._call(lambda: list(self._created)))

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._call(lambda: list(self._requests)))

    def count(self, method: str, path_prefix: str = "/") -> int:
        """How many requests with this method had a path starting with `path_prefix`."""
        return sum(
            1 for r in self.requests if r.method == method and r.path.startswith(path_prefix)
        )

    def workflow(self, name: str) -> dict[str, Any]:
        return dict(self._call(lambda: copy.deepcopy(self._workflows[name])))

    def workflows(self) -> list[dict[str, Any]]:
        return list(self._call(lambda: copy.deepcopy(list(self._workflows.values()))))

    def archived(self) -> list[dict[str, Any]]:
        """The archive's full records (as `GET /archived-workflows/{uid}` would answer)."""
        return list(self._call(lambda: copy.deepcopy(list(self._archive.values()))))

    # -- the controller's part, driven by the test ----------------------------------------------

    def set_phase(
        self,
        name: str,
        phase: str,
        *,
        message: str | None = None,
        failed_nodes: Mapping[str, str] | None = None,
        progress: str | None = None,
        nodes: Mapping[str, str] | None = None,
    ) -> None:
        """Move a workflow to `phase`; `failed_nodes` maps step names to their failure message,
        `progress` is the controller's `status.progress` ("done/total" pods, argo-workflows'
        `wfv1.Progress`), `nodes` maps pod nodes' display names to their phases (a fan-out's
        expanded tasks are named `<task>(<index>:<item>)`, as argo-workflows' `expandTask`
        in `workflow/controller/dag.go` names them)."""
        if phase not in PHASES:
            raise ValueError(f"unknown Argo phase {phase!r}; one of {PHASES}")
        bad = {p for p in (nodes or {}).values() if p not in NODE_PHASES}
        if bad:
            raise ValueError(f"unknown node phases {sorted(bad)}; one of {NODE_PHASES}")

        self._call(
            lambda: self._finish(name, phase, message, failed_nodes or {}, progress, nodes=nodes)
        )

    def set_nodes(self, name: str, phases: Mapping[str, str]) -> dict[str, str]:
        """Give the workflow pod nodes (step display names to node phases, e.g. the
        partitions of a parallel run) as the controller would; return their node ids."""

        def add(workflow: dict[str, Any]) -> None:
            for step, phase in phases.items():
                _node(workflow, _node_id(name, step), step, kind="Pod", phase=phase, message="")

        self._call(lambda: self._change(name, add))
        return {step: _node_id(name, step) for step in phases}

    def fail_step(
        self,
        name: str,
        step: str,
        failure: str = "exit",
        *,
        exit_code: int = 1,
        log: list[str] | None = None,
        template: str | None = None,
    ) -> str:
        """Give the workflow a failed step node as the controller writes `failure` (a key of
        `NODE_FAILURES`) and a pod that printed `log` (None: its pod is gone); return the pod
        name. Finish the workflow with `set_phase` afterwards."""
        phase, message = NODE_FAILURES[failure]
        template = template or step

        def add(workflow: dict[str, Any]) -> str:
            node = _node(
                workflow,
                _node_id(name, step),
                step,
                kind="Pod",
                phase=phase,
                message=message.format(exit_code=exit_code),
            )
            node["templateName"] = template
            pod = pod_name(name, template, node["name"])
            if log is not None:
                self._pod_logs[(name, pod)] = list(log)
            return pod

        found: list[str] = []
        self._call(lambda: self._change(name, lambda wf: found.append(add(wf))))
        return found[0]

    def break_next_log_stream(self, message: str = "rpc error: transport is closing") -> None:
        """The next log stream ends, after its entries, with an error inside the 200 answer."""
        self._call(lambda: self._log_stream_errors.append(message))

    def add_output_artifact(
        self,
        name: str,
        content: bytes,
        *,
        artifact_name: str = "published_zip",
        step: str = "publish-data",
    ) -> str:
        """Give the workflow a succeeded step with an output artifact; return the node id."""
        node_id = _node_id(name, step)

        def add(workflow: dict[str, Any]) -> None:
            node = _node(workflow, node_id, step, kind="Pod", phase="Succeeded", message="")
            node["outputs"] = {
                "artifacts": [
                    {
                        "name": artifact_name,
                        "path": f"/output_dir/{artifact_name}",
                        "s3": {"key": f"{name}/{node_id}/{artifact_name}"},
                    }
                ]
            }
            self._artifacts[(name, node_id, artifact_name)] = content

        self._call(lambda: self._change(name, add))
        return node_id

    def delete(self, name: str) -> None:
        """The workflow vanishes (deleted by a person); an archived copy, if any, stays."""

        def remove() -> None:
            workflow = self._workflows.pop(name)
            self._version += 1
            workflow["metadata"]["resourceVersion"] = str(self._version)
            self._publish(workflow, None)

        self._call(remove)

    def put(self, workflow: Mapping[str, Any], phase: str) -> str:
        """Store a workflow at `phase` as if created and run that far, without the checks of
        creation (a benchmark's thousands of running workflows); returns its name."""

        def store() -> str:
            created = copy.deepcopy(dict(workflow))
            self._version += 1
            name = created["metadata"].get("name") or _generated(created["metadata"])
            created["metadata"].update(
                name=name,
                namespace=self.namespace,
                uid=str(uuid.uuid4()),
                resourceVersion=str(self._version),
                creationTimestamp=_now(),
            )
            created["status"] = {}
            _apply_phase(created, phase, None, {})
            self._workflows[name] = created
            self._created.append(name)
            self._publish(None, created)
            return name

        return str(self._call(store))

    def expire(self, name: str) -> None:
        """The TTL controller deletes a completed workflow (refused for one still running)."""
        phase = self.workflow(name).get("status", {}).get("phase")
        if phase not in FINISHED:
            raise ValueError(f"the TTL only deletes completed workflows; {name} is {phase}")
        self.delete(name)

    # -- outages on demand ----------------------------------------------------------------------

    def faults_left(self) -> int:
        """How many of the failures and drops asked for have not happened yet."""
        return int(
            self._call(
                lambda: (
                    len(self._failures) + len(self._lint_faults) + self._drops + self._lost_creates
                )
            )
        )

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next `count` requests get `status` (503, 500, 429, ...) and Argo's error body."""
        self._call(lambda: self._failures.extend([status] * count))

    def fail_next_lints(self, count: int, status: int = 503) -> None:
        """The next `count` lint requests (only those) get `status` and Argo's error body."""
        fault = ArgoError(status, f"fake outage: HTTP {status}")
        self._call(lambda: self._lint_faults.extend([fault] * count))

    def refuse_next_lint(self, message: str) -> None:
        """The next lint finds `message` wrong, as a validator rule this fake lacks would (HTTP
        500, `codes.Unknown`, like every refusal of `LintWorkflow`)."""
        refusal = ArgoError(500, message, grpc_code=2)
        self._call(lambda: self._lint_faults.append(refusal))

    def drop_next(self, count: int) -> None:
        """The next `count` requests have their connection closed without an answer."""

        def drop() -> None:
            self._drops += count

        self._call(drop)

    def lose_next_create_answers(self, count: int) -> None:
        """The next `count` creates happen, but the connection drops before the answer: the
        client cannot know the workflow exists (as when it dies between submit and record)."""

        def lose() -> None:
            self._lost_creates += count

        self._call(lose)

    def slow_next(self, count: int, delay_s: float) -> None:
        """The next `count` requests are answered only after `delay_s` seconds."""
        self._call(lambda: self._delays.extend([delay_s] * count))

    def close_streams(self) -> None:
        """End every open workflow-events stream (as a restarting server would)."""

        def close() -> None:
            for stream in self._streams:
                stream.queue.put_nowait(None)

        self._call(close)

    # -- HTTP ---------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        token_ok = request.headers.get("Authorization") == f"Bearer {self.token}"
        self._requests.append(
            RecordedRequest(request.method, request.path, dict(request.query), body, token_ok)
        )
        if self._delays:
            await asyncio.sleep(self._delays.pop(0))
        if self._drops:
            self._drops -= 1
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        if self._failures:
            status = self._failures.pop(0)
            return ArgoError(status, f"fake outage: HTTP {status}").response()
        try:
            if not token_ok:
                raise ArgoError(
                    401, "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/"
                )
            namespace = request.match_info.get("namespace")
            if namespace is not None and namespace != self.namespace:
                raise ArgoError(
                    403,
                    f'workflows.argoproj.io is forbidden: User "system:serviceaccount:argo:'
                    f'ogdc-hooks" cannot {request.method.lower()} resource "workflows" in API '
                    f'group "argoproj.io" in the namespace "{namespace}"',
                )
            response = await handler(request)
            creating = request.match_info.handler == self._create
            if self._lost_creates and creating and response.status == 200:
                self._lost_creates -= 1
                assert request.transport is not None
                request.transport.abort()
                raise asyncio.CancelledError
            return response
        except ArgoError as err:
            if request.path.startswith("/artifact"):
                return web.Response(status=err.status, text=str(err))
            return err.response()

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError as err:
            raise ArgoError(400, f"invalid character in request body: {err}") from None
        if not isinstance(body, dict) or body.get("workflow") is None:
            raise ArgoError(400, "workflow body not specified")
        workflow = copy.deepcopy(body["workflow"])
        name = self._check_new(workflow)
        if name in self._workflows:
            raise ArgoError(409, f'workflows.argoproj.io "{name}" already exists')
        self._version += 1
        metadata = workflow.setdefault("metadata", {})
        metadata.update(
            name=name,
            namespace=self.namespace,
            uid=str(uuid.uuid4()),
            resourceVersion=str(self._version),
            generation=1,
            creationTimestamp=_now(),
        )
        workflow.setdefault("apiVersion", "argoproj.io/v1alpha1")
        workflow.setdefault("kind", "Workflow")
        workflow["status"] = {}
        self._workflows[name] = workflow
        self._created.append(name)
        self._publish(None, workflow)
        return web.json_response(workflow)

    async def _lint(self, request: web.Request) -> web.Response:
        if self._lint_faults:
            raise self._lint_faults.pop(0)
        try:
            body = json.loads(await request.read())
        except ValueError as err:
            raise ArgoError(400, f"invalid character in request body: {err}") from None
        if not isinstance(body, dict) or body.get("workflow") is None:
            raise ArgoError(500, "unable to get a workflow")  # fmt.Errorf: codes.Unknown
        workflow = body["workflow"]
        problems = schema_problems(workflow)
        if problems:
            raise ArgoError(400, "Workflow is invalid: " + "; ".join(problems[:5]))
        try:
            validate_workflow(workflow, lint=True)
        except Invalid as err:
            raise ArgoError(500, str(err), grpc_code=2) from None
        return web.json_response(workflow)

    def _check_new(self, workflow: Any) -> str:
        """What Argo and the Kubernetes API check before creating; returns the final name."""
        problems = schema_problems(workflow)
        if problems:
            raise ArgoError(400, "Workflow is invalid: " + "; ".join(problems[:5]))
        metadata, spec = workflow["metadata"], workflow["spec"]
        namespace = metadata.get("namespace")
        if namespace and namespace != self.namespace:
            raise ArgoError(
                400,
                "the namespace of the provided object does not match the "
                "namespace sent on the request",
            )
        name, generate = metadata.get("name") or "", metadata.get("generateName") or ""
        if not name and not generate:
            raise ArgoError(
                400,
                'Workflow.argoproj.io "" is invalid: metadata.name: Required '
                "value: name or generateName is required",
            )
        if len(name) > 63:
            raise ArgoError(
                400,
                f"workflow name {name!r} must not be more than 63 characters "
                f"long (currently {len(name)})",
            )
        if spec.get("workflowTemplateRef"):
            raise ArgoError(400, "this fake does not resolve workflowTemplateRef")
        try:
            validate_workflow(workflow, lint=False)
        except Invalid as err:
            raise ArgoError(400, str(err)) from None  # CreateWorkflow: codes.InvalidArgument
        problems = label_problems(metadata.get("labels"))
        if problems:
            raise ArgoError(400, 'Workflow.argoproj.io "" is invalid: ' + "; ".join(problems))
        if not name:
            name = _generated(metadata)
        if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            raise ArgoError(
                400,
                f'Workflow.argoproj.io "{name}" is invalid: metadata.name: '
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
                "consist of lower case alphanumeric characters, '-' or '.', and "
                "must start and end with an alphanumeric character",
            )
        return name

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response(self._find(request.match_info["name"]))

    async def _list(self, request: web.Request) -> web.Response:
        selector = parse_selector(request.query.get("listOptions.labelSelector", ""))
        items = [wf for wf in self._workflows.values() if matches(selector, wf)]
        # Argo (like Kubernetes' JSON) sends null, not [], when nothing matches.
        answer = {"metadata": {"resourceVersion": str(self._version)}, "items": items or None}
        return web.json_response(cleaned(answer, request.query.get("fields", "")))

    async def _stop(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        workflow = self._find(name)
        if workflow.get("status", {}).get("phase") in FINISHED:
            raise ArgoError(
                500,
                f"cannot shutdown a completed workflow: workflow: {json.dumps(name)}, "
                f"namespace: {json.dumps(self.namespace)}",
            )
        if "patch" in self.forbidden:
            raise ArgoError(
                403,
                f'workflows.argoproj.io "{name}" is forbidden: User "system:serviceaccount:'
                f'{self.namespace}:ogdc-hooks" cannot patch resource "workflows" in API group '
                f'"argoproj.io" in the namespace "{self.namespace}"',
            )
        self._change(name, lambda wf: wf["spec"].update(shutdown="Stop"))
        answer = copy.deepcopy(workflow)
        self._finish(name, "Failed", "Stopped with strategy 'Stop'", {})
        return web.json_response(answer)

    async def _retry(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        workflow = self._find(name)
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError as err:
            raise ArgoError(400, f"invalid character in request body: {err}") from None
        restart_successful = bool(body.get("restartSuccessful"))
        phase = workflow.get("status", {}).get("phase") or ""
        if phase == "Succeeded":
            if not (restart_successful and body.get("nodeFieldSelector")):
                raise ArgoError(
                    400,
                    "To retry a succeeded workflow, set the options restartSuccessful and "
                    "nodeFieldSelector",
                )
        elif phase not in ("Failed", "Error"):
            raise ArgoError(400, f"Cannot retry a workflow in phase {phase}")
        if "update" in self.forbidden:
            raise ArgoError(
                403,
                f'workflows.argoproj.io "{name}" is forbidden: User "system:serviceaccount:'
                f'{self.namespace}:ogdc-hooks" cannot update resource "workflows" in API group '
                f'"argoproj.io" in the namespace "{self.namespace}"',
            )
        self._change(name, _retried)
        return web.json_response(copy.deepcopy(self._workflows[name]))

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        name, query = request.match_info["name"], request.query
        archived = any(wf["metadata"]["name"] == name for wf in self._archive.values())
        if name not in self._workflows and not archived:
            self._find(name)  # 404, before the stream
        lines: list[tuple[str, str]] = []
        if name in self._workflows and query.get("logOptions.container", "main") == "main":
            for (workflow, pod), log in self._pod_logs.items():
                if workflow == name and query.get("podName", pod) == pod:
                    tail = int(query.get("logOptions.tailLines") or len(log) or 1)
                    lines += [(pod, line) for line in log[-tail:]]
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        limit = int(query.get("logOptions.limitBytes") or 2**62)
        for pod, line in lines:
            limit -= len(line) + 1
            if limit < 0:
                break
            await response.write(
                json.dumps({"result": {"content": line, "podName": pod}}).encode() + b"\n"
            )
        error = None
        if name not in self._workflows:
            error = (5, 404, "Not Found", f'workflows.argoproj.io "{name}" not found')
        elif self._log_stream_errors:
            error = (13, 500, "Internal Server Error", self._log_stream_errors.pop(0))
        if error is not None:
            grpc_code, http_code, http_status, message = error
            body = {
                "grpc_code": grpc_code,
                "http_code": http_code,
                "http_status": http_status,
                "message": message,
            }
            await response.write(json.dumps({"error": body}).encode() + b"\n")
        await response.write_eof()
        return response

    async def _list_archived(self, request: web.Request) -> web.Response:
        query = request.query
        namespace = query.get("namespace", "")
        if namespace != self.namespace:
            raise ArgoError(
                403,
                "Permission denied, you are not allowed to list workflows in namespace "
                f'"{namespace}". Maybe you want to specify a namespace with query parameter '
                f"`.namespace={namespace}`?",
            )
        if not query.get("listOptions.continue", "0").isdigit():
            raise ArgoError(400, "listOptions.continue must be int")
        selector = parse_selector(query.get("listOptions.labelSelector", ""))
        items = [_archived_item(wf) for wf in self._archive.values() if matches(selector, wf)]
        items.sort(key=lambda wf: str(wf["status"].get("startedAt") or ""), reverse=True)
        return web.json_response({"metadata": {}, "items": items or None})

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        fields = query.get("fields", "").replace("result.object.", "")
        stream = _Stream(parse_selector(query.get("listOptions.labelSelector", "")), fields)
        since = query.get("listOptions.resourceVersion", "")
        if since not in ("", "0") and not since.isdigit():
            raise ArgoError(400, f"resourceVersion: Invalid value: {since!r}")
        if since in ("", "0"):
            current = [
                stream.event("ADDED", wf)
                for wf in self._workflows.values()
                if matches(stream.selector, wf)
            ]
        elif self._history and int(since) < self._history[0][0] - 1:
            oldest = self._history[0][0] - 1
            current = [_stream_error(400, f"too old resource version: {since} ({oldest})")]
            stream.queue.put_nowait(None)
        else:
            current = [
                line
                for version, before, after in self._history
                if version > int(since) and (line := stream.change(before, after)) is not None
            ]
        self._streams.add(stream)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            await response.prepare(request)
            for added in current:
                await response.write(added)
            while True:
                try:
                    line: bytes | None = await asyncio.wait_for(
                        stream.queue.get(), self.keepalive_s
                    )
                except TimeoutError:
                    await response.write(b"\n")  # keep-alive: proxies drop silent connections
                    continue
                if line is None:
                    break
                await response.write(line)
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        finally:
            self._streams.discard(stream)
        return response

    async def _artifact(self, request: web.Request) -> web.Response:
        info = request.match_info
        self._find(info["name"])
        content = self._artifacts.get((info["name"], info["node"], info["artifact"]))
        if content is None:
            raise ArgoError(404, "artifact not found")
        return web.Response(
            body=content, headers={"Content-Disposition": f'filename="{info["artifact"]}"'}
        )

    async def _end_streams(self, _app: web.Application) -> None:
        for stream in self._streams:
            stream.queue.put_nowait(None)

    # -- state changes --------------------------------------------------------------------------

    def _find(self, name: str) -> dict[str, Any]:
        if name not in self._workflows:
            raise ArgoError(404, f'workflows.argoproj.io "{name}" not found')
        return self._workflows[name]

    def _finish(
        self,
        name: str,
        phase: str,
        message: str | None,
        failed_nodes: Mapping[str, str],
        progress: str | None = None,
        *,
        nodes: Mapping[str, str] | None = None,
    ) -> None:
        """Move to `phase`; a completed workflow is also archived (and labelled so) at once."""
        archive = self.archive_enabled and phase in FINISHED

        def change(workflow: dict[str, Any]) -> None:
            _set_nodes(workflow, nodes or {})
            _apply_phase(workflow, phase, message, failed_nodes)
            if progress is not None:
                workflow["status"]["progress"] = progress
            if archive:
                workflow["metadata"]["labels"][ARCHIVING_LABEL] = "Archived"

        self._change(name, change)
        if archive:
            record = copy.deepcopy(self._workflows[name])
            uid = record["metadata"]["uid"]
            self._archive.pop(uid, None)
            self._archive[uid] = record

    def _change(self, name: str, change: Any) -> None:
        workflow = self._workflows[name]
        before = copy.deepcopy(workflow)
        change(workflow)
        self._version += 1
        workflow["metadata"]["resourceVersion"] = str(self._version)
        self._publish(before, workflow)

    def _publish(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """Remember the change and tell each stream (see `_Stream.change`)."""
        after = copy.deepcopy(after)
        self._history.append((self._version, before, after))
        for stream in self._streams:
            if (line := stream.change(before, after)) is not None:
                stream.queue.put_nowait(line)


_GROUP_NODES = frozenset({"Steps", "DAG", "StepGroup", "TaskGroup", "Retry"})


def _retried(workflow: dict[str, Any]) -> None:
    """`FormulateRetryWorkflow` with `restartSuccessful: false`: failed nodes (and their
    children) deleted, the group nodes above them reset, succeeded ones kept."""
    name = workflow["metadata"]["name"]
    status = workflow["status"]
    nodes: dict[str, Any] = status.get("nodes") or {}
    parents = {
        child: node_id for node_id, node in nodes.items() for child in node.get("children", [])
    }
    doomed = [
        i
        for i, n in nodes.items()
        if n.get("phase") in ("Failed", "Error") and n.get("type") not in _GROUP_NODES
    ]
    doomed += [i for i, n in nodes.items() if str(n.get("name", "")).startswith(f"{name}.onExit")]
    deleted: set[str] = set()
    while doomed:
        node_id = doomed.pop()
        if node_id in deleted or node_id not in nodes:
            continue
        deleted.add(node_id)
        doomed.extend(nodes[node_id].get("children", []))
        parent = parents.get(node_id)
        while parent is not None and parent not in deleted:
            if nodes[parent].get("type") in _GROUP_NODES:
                nodes[parent].update(phase="Running", startedAt=_now())
                nodes[parent].pop("message", None)
                nodes[parent].pop("finishedAt", None)
            parent = parents.get(parent)
    for node_id in deleted:
        nodes.pop(node_id, None)
    for node in nodes.values():
        if "children" in node:
            node["children"] = [child for child in node["children"] if child not in deleted]
    labels = workflow["metadata"].setdefault("labels", {})
    labels.pop("workflows.argoproj.io/completed", None)
    labels.pop(ARCHIVING_LABEL, None)
    labels["workflows.argoproj.io/phase"] = "Running"
    workflow["spec"].pop("shutdown", None)
    status.update(phase="Running", startedAt=_now())
    status.pop("message", None)
    status.pop("finishedAt", None)


def _archived_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """A list item of the archive: the columns and JSON fields `ListWorkflows` selects."""
    metadata, status = record["metadata"], record.get("status") or {}
    return {
        "metadata": {
            **{key: metadata[key] for key in ("name", "namespace", "uid", "creationTimestamp")},
            "labels": {**(metadata.get("labels") or {}), ARCHIVING_LABEL: "Persisted"},
            "annotations": dict(metadata.get("annotations") or {}),
        },
        "spec": {},
        "status": {key: status[key] for key in _ARCHIVED_STATUS if key in status},
    }


def cleaned(value: Any, fields: str) -> Any:
    """`value` with only the dotted paths of `fields` (every path through a list applies
    to each item), as Argo's `util/fields` cleaner includes them; all of it without."""
    paths = [path.split(".") for path in fields.split(",") if path and not path.startswith("-")]
    return _pick(value, paths) if paths else value


def _pick(value: Any, paths: list[list[str]]) -> Any:
    if isinstance(value, list):
        return [_pick(item, paths) for item in value]
    if not isinstance(value, dict) or any(not path for path in paths):
        return value
    picked = {}
    for key in dict.fromkeys(path[0] for path in paths):
        if key in value:
            picked[key] = _pick(value[key], [path[1:] for path in paths if path[0] == key])
    return picked


def _stream_error(status: int, message: str) -> bytes:
    """An error in the middle of a stream, as grpc-gateway writes it."""
    error = {"grpc_code": _GRPC_CODES.get(status, 2), "http_code": status, "message": message}
    return json.dumps({"error": error}).encode() + b"\n"


def _generated(metadata: Mapping[str, Any]) -> str:
    return str(metadata.get("generateName") or "")[:58] + "".join(
        random.choices(_SUFFIX_CHARS, k=5)
    )


def _event(kind: str, workflow: Any) -> bytes:
    return json.dumps({"result": {"type": kind, "object": workflow}}).encode() + b"\n"


def _node_id(workflow_name: str, step: str) -> str:
    """Stable node ids, shaped like Argo's (`<workflow>-<number>`)."""
    return f"{workflow_name}-{zlib.crc32(step.encode()) % 10**10}"


def _node(
    workflow: dict[str, Any], node_id: str, display: str, *, kind: str, phase: str, message: str
) -> dict[str, Any]:
    name = workflow["metadata"]["name"]
    nodes = workflow["status"].setdefault("nodes", {})
    nodes.setdefault(
        name,
        {
            "id": name,
            "name": name,
            "displayName": name,
            "type": "Steps",
            "phase": "Running",
            "startedAt": _now(),
            "children": [],
        },
    )
    node = {
        "id": node_id,
        "name": f"{name}[0].{display}",
        "displayName": display,
        "type": kind,
        "phase": phase,
        "startedAt": _now(),
        "finishedAt": _now(),
        "message": message,
    }
    nodes[node_id] = node
    if node_id not in nodes[name]["children"]:
        nodes[name]["children"].append(node_id)
    return node


def _set_nodes(workflow: dict[str, Any], phases: Mapping[str, str]) -> None:
    name = workflow["metadata"]["name"]
    for display, phase in phases.items():
        _node(workflow, _node_id(name, display), display, kind="Pod", phase=phase, message="")


def _apply_phase(
    workflow: dict[str, Any], phase: str, message: str | None, failed_nodes: Mapping[str, str]
) -> None:
    name = workflow["metadata"]["name"]
    status = workflow["status"]
    status["phase"] = phase
    if message:
        status["message"] = message
    else:
        status.pop("message", None)
    if phase != "Pending":
        status.setdefault("startedAt", _now())
    labels = workflow["metadata"].setdefault("labels", {})
    labels["workflows.argoproj.io/phase"] = phase
    if phase in FINISHED:
        status["finishedAt"] = _now()
        labels["workflows.argoproj.io/completed"] = "true"
    for step, step_message in failed_nodes.items():
        _node(
            workflow, _node_id(name, step), step, kind="Pod", phase="Failed", message=step_message
        )
    if name in status.get("nodes", {}):
        status["nodes"][name]["phase"] = phase


@pytest.fixture
def fake_argo() -> Iterator[FakeArgo]:
    """A running fake Argo Server (token `fake.token`, namespace `fake.namespace`)."""
    fake = FakeArgo().start()
    try:
        yield fake
    finally:
        fake.stop()
