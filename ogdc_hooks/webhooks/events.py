"""Webhook deliveries, sans I/O, for every forge: the neutral delivery, the refusal, and the
pieces each forge's intake shares (an incremental HMAC-SHA256, a header, a JSON body).

Everything here is a pure function of (headers, body, secret), so every rule of
intake is tested without a server. The HTTP handler maps `WebhookRejected` to
its status code and stores what the forge's intake plans.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MiB; no forge sends more
ZERO_SHA = "0" * 40


class WebhookRejected(Exception):
    """The delivery cannot be accepted; `status` is the HTTP answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Delivery:
    """A verified, parsed delivery; `payload_json` is the JSON text as received. It is
    stored, and deduplicated, per (`forge`, `id`): the host of the sending instance."""

    id: str
    event: str
    action: str | None
    repository: str | None
    payload: dict[str, Any]
    payload_json: str
    forge: str  # the host of the instance that sent it


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The header's value without surrounding blanks; None when missing or blank."""
    value = headers.get(name)
    return value.strip() if value and value.strip() else None


class HmacCheck:
    """HMAC-SHA256 of the body fed chunk by chunk, compared in constant time with the hex
    digest the sender claims, for each candidate secret (one per forge instance)."""

    def __init__(self, claimed_hex: str, secrets: Mapping[str, str]) -> None:
        self._claimed = claimed_hex.lower()
        self._macs = {
            host: hmac.new(secret.encode(), digestmod=hashlib.sha256)
            for host, secret in secrets.items()
        }

    def update(self, chunk: bytes) -> None:
        for mac in self._macs.values():
            mac.update(chunk)

    def verify(self) -> tuple[str, ...]:
        """The hosts whose secret made the claimed digest; 401 when none did."""
        matched = tuple(
            host
            for host, mac in self._macs.items()
            if hmac.compare_digest(mac.hexdigest(), self._claimed)
        )
        if not matched:
            raise WebhookRejected(401, "signature does not match the payload")
        return matched


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


def json_object(content_type: str | None, body: bytes) -> tuple[dict[str, Any], str]:
    """The payload object of a JSON (or form-encoded `payload=`) body, and its JSON text."""
    text = _json_text(content_type, body)
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
    return payload, text


def delivery_of(
    forge: str, delivery_id: str, event: str, payload: dict[str, Any], text: str
) -> Delivery:
    """The neutral delivery; `action` and `repository.full_name` read where forges put them
    (GitHub, Forgejo and Gitea alike), and refused with a NUL in them."""
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
        forge=forge,
    )
