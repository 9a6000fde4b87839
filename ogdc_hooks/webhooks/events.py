"""Webhook deliveries, sans I/O: verify the signature, parse, and decide what work they ask for.

Everything here is a pure function of (headers, body, secret), so every rule
of intake is tested without a server. The HTTP handler maps `WebhookRejected`
to its status code and stores what `plan_work` returns.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MiB
ZERO_SHA = "0" * 40


class WebhookRejected(Exception):
    """The delivery cannot be accepted; `status` is the HTTP answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Delivery:
    """A verified, parsed delivery; `payload_json` is the JSON text as received."""

    id: str
    event: str
    action: str | None
    repository: str | None
    payload: dict[str, Any]
    payload_json: str


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value.strip() if value and value.strip() else None


def verify_signature(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Only X-Hub-Signature-256 (HMAC-SHA256 of the raw body) is accepted, as GitHub advises."""
    check = SignatureCheck(headers, secret)
    check.update(body)
    check.verify()


class SignatureCheck:
    """The X-Hub-Signature-256 check fed chunk by chunk as the body arrives, so that an
    unsigned or badly signed body is refused before it is whole (`signature_header` says
    so at once when the header is missing or malformed)."""

    def __init__(self, headers: Mapping[str, str], secret: str) -> None:
        self._expected = signature_header(headers)
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def verify(self) -> None:
        if not hmac.compare_digest(self._mac.hexdigest(), self._expected):
            raise WebhookRejected(401, "signature does not match the payload")


def signature_header(headers: Mapping[str, str]) -> str:
    """The hex digest the sender claims; 401 when the header is missing or malformed."""
    signature = _header(headers, "X-Hub-Signature-256")
    if signature is None:
        raise WebhookRejected(401, "missing X-Hub-Signature-256 header")
    if not signature.startswith("sha256="):
        raise WebhookRejected(401, "X-Hub-Signature-256 must start with 'sha256='")
    return signature.removeprefix("sha256=").lower()


def _json_text(content_type: str | None, body: bytes) -> str:
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8") from None
    if kind == "application/x-www-form-urlencoded":
        values = urllib.parse.parse_qs(text).get("payload")
        if not values:
            raise WebhookRejected(400, "form body has no 'payload' field")
        return values[0]
    if kind != "application/json":
        raise WebhookRejected(415, f"unsupported content type {kind!r}; use application/json")
    return text


def parse_delivery(headers: Mapping[str, str], body: bytes, secret: str) -> Delivery:
    """Verify then parse; the signature is checked before any byte of the body is trusted."""
    verify_signature(headers, body, secret)
    return parse_verified(headers, body)


def parse_verified(headers: Mapping[str, str], body: bytes) -> Delivery:
    """Parse a body whose signature `SignatureCheck` has verified."""
    event = _header(headers, "X-GitHub-Event")
    if event is None:
        raise WebhookRejected(400, "missing X-GitHub-Event header")
    delivery_id = _header(headers, "X-GitHub-Delivery")
    if delivery_id is None:
        raise WebhookRejected(400, "missing X-GitHub-Delivery header")
    if len(delivery_id) > 100:
        raise WebhookRejected(400, "X-GitHub-Delivery is longer than 100 characters")
    text = _json_text(headers.get("Content-Type"), body)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise WebhookRejected(400, f"malformed JSON: {err.msg} at line {err.lineno}") from None
    except RecursionError:
        raise WebhookRejected(400, "malformed JSON: nested too deeply") from None
    except ValueError:  # an integer of more than 4300 digits
        raise WebhookRejected(400, "malformed JSON: a number is too long") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "JSON payload must be an object")
    action = payload.get("action")
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    for name, value in (("action", action), ("repository.full_name", full_name)):
        if isinstance(value, str) and "\x00" in value:
            raise WebhookRejected(400, f"{name} must not contain a NUL character")
    return Delivery(
        id=delivery_id,
        event=event,
        action=action if isinstance(action, str) else None,
        repository=full_name if isinstance(full_name, str) else None,
        payload=payload,
        payload_json=text,
    )


# The job each handled event asks for, by `event` or `event.action`.
_JOB_KINDS = {
    "push": "push",
    "check_run.rerequested": "rerequest",
    "installation": "installation",
    "installation_repositories": "installation",
}
HANDLED_EVENTS = frozenset(_JOB_KINDS)


def plan_work(delivery: Delivery) -> str | None:
    """The job kind a delivery asks for, or None when it is acknowledged and ignored."""
    kind = _JOB_KINDS.get(delivery.event) or _JOB_KINDS.get(f"{delivery.event}.{delivery.action}")
    if kind == "push" and not is_branch_push(delivery.payload):
        return None
    return kind


def is_branch_push(payload: Mapping[str, Any]) -> bool:
    """A push that adds commits to a branch: not a tag, not a branch deletion."""
    ref = payload.get("ref")
    return (
        isinstance(ref, str)
        and ref.startswith("refs/heads/")
        and not payload.get("deleted", False)
        and payload.get("after") not in (None, ZERO_SHA)
    )
