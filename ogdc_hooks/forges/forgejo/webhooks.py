"""Forgejo's and Gitea's webhook intake, sans I/O (`ForgejoIntake`, a `forges.base.Intake`).

Forgejo signs a delivery with the hex HMAC-SHA256 of the raw body in `X-Forgejo-Signature`
(and the same in `X-Gitea-Signature`; Gitea sends only the latter), names it in
`X-Forgejo-Delivery` / `X-Gitea-Delivery` and its event in `X-Forgejo-Event` /
`X-Gitea-Event` (services/webhook/shared/payloader.go `AddDefaultHeaders`). Several
instances may be configured: the body is checked against every instance's secret at
once as it arrives, and the delivery is the matching instance's only if its repository
URLs are on that instance's origin; otherwise it is refused (401), so a payload naming
another host never gets a token. `push` events to a branch are work; `create` and
`delete` (and every other event) are acknowledged and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ogdc_hooks.forges.forgejo.payloads import belongs_to, repository_urls
from ogdc_hooks.jobs.kinds import JobKind
from ogdc_hooks.settings import ForgejoInstance
from ogdc_hooks.webhooks.events import (
    ZERO_SHA,
    Delivery,
    HmacCheck,
    WebhookRejected,
    delivery_of,
    header,
    json_object,
)

SIGNATURES = ("X-Forgejo-Signature", "X-Gitea-Signature")
EVENTS = ("X-Forgejo-Event", "X-Gitea-Event")
DELIVERIES = ("X-Forgejo-Delivery", "X-Gitea-Delivery")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def first_header(headers: Mapping[str, str], names: Sequence[str]) -> str | None:
    """The first of these headers that is there (Forgejo's, then Gitea's)."""
    for name in names:
        value = header(headers, name)
        if value is not None:
            return value
    return None


def claimed_signature(headers: Mapping[str, str]) -> str:
    """The hex digest the sender claims; 401 when missing (a webhook without a secret sends
    an empty one) or not 64 hex digits."""
    signature = first_header(headers, SIGNATURES)
    if signature is None:
        raise WebhookRejected(
            401, "missing X-Forgejo-Signature (or X-Gitea-Signature): give the webhook a secret"
        )
    if not _HEX_SHA256.fullmatch(signature):
        raise WebhookRejected(401, "X-Forgejo-Signature must be 64 hex digits (HMAC-SHA256)")
    return signature.lower()


def is_branch_push(delivery: Delivery) -> bool:
    """A push that adds commits to a branch: not a tag, not a deletion."""
    ref, after = delivery.payload.get("ref"), delivery.payload.get("after")
    return isinstance(ref, str) and ref.startswith("refs/heads/") and after not in (None, ZERO_SHA)


class ForgejoIntake:
    """`POST /webhooks/forgejo` for every configured Forgejo or Gitea instance."""

    forge_kind = "forgejo"

    def __init__(self, instances: Sequence[ForgejoInstance]) -> None:
        self._instances = {instance.host: instance for instance in instances}

    def disabled_reason(self) -> str | None:
        if self._instances:
            return None
        return (
            "Forgejo webhooks are disabled: neither FORGEJO_URL (with FORGEJO_WEBHOOK_SECRET) "
            "nor FORGEJO_INSTANCES_FILE is configured"
        )

    def signature_check(self, headers: Mapping[str, str]) -> HmacCheck:
        secrets = {host: i.webhook_secret.reveal() for host, i in self._instances.items()}
        return HmacCheck(claimed_signature(headers), secrets)

    def parse_verified(
        self, headers: Mapping[str, str], body: bytes, matched: tuple[str, ...]
    ) -> Delivery:
        """The delivery of a body signed by the instances `matched`: the one its repository
        is on (401 when none is)."""
        event = first_header(headers, EVENTS)
        if event is None:
            raise WebhookRejected(400, "missing X-Forgejo-Event (or X-Gitea-Event) header")
        delivery_id = first_header(headers, DELIVERIES)
        if delivery_id is None:
            raise WebhookRejected(400, "missing X-Forgejo-Delivery (or X-Gitea-Delivery) header")
        if len(delivery_id) > 100:
            raise WebhookRejected(400, "X-Forgejo-Delivery is longer than 100 characters")
        payload, text = json_object(headers.get("Content-Type"), body)
        host = self._instance_of(payload, matched)
        return delivery_of(host, delivery_id, event, payload, text)

    def _instance_of(self, payload: Mapping[str, object], matched: tuple[str, ...]) -> str:
        candidates = [self._instances[host] for host in matched if host in self._instances]
        if repository_urls(payload) is None and len(candidates) == 1:
            return candidates[0].host  # an event about no repository: only acknowledged
        for instance in candidates:
            if belongs_to(instance, payload):
                return instance.host
        raise WebhookRejected(
            401,
            "the delivery's repository is not on a configured Forgejo instance whose secret "
            "signed it (FORGEJO_URL, FORGEJO_INSTANCES_FILE)",
        )

    def is_ping(self, delivery: Delivery) -> bool:
        return False  # Forgejo has no ping event; its "Test delivery" sends a push

    def plan_work(self, delivery: Delivery) -> JobKind | None:
        if delivery.event == "push" and is_branch_push(delivery):
            return JobKind.PUSH
        return None  # create, delete and every other event: acknowledged, ignored
