"""GitHub's webhook intake, sans I/O: the X-Hub-Signature-256 check, the X-GitHub headers,
and the job each event asks for (`GitHubIntake` puts them behind `forges.base.Intake`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ogdc_hooks.forges.github.proposals import asks_for_work
from ogdc_hooks.jobs.kinds import JobKind
from ogdc_hooks.settings import Settings
from ogdc_hooks.webhooks.events import (
    ZERO_SHA,
    Delivery,
    HmacCheck,
    WebhookRejected,
    delivery_of,
    header,
    json_object,
)

SIGNATURE = "X-Hub-Signature-256"


class SignatureCheck(HmacCheck):
    """The X-Hub-Signature-256 check fed chunk by chunk as the body arrives, so that an
    unsigned or badly signed body is refused before it is whole (`signature_header` says
    so at once when the header is missing or malformed)."""

    def __init__(self, headers: Mapping[str, str], secret: str, host: str = "github.com") -> None:
        super().__init__(signature_header(headers), {host: secret})


def verify_signature(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Only X-Hub-Signature-256 (HMAC-SHA256 of the raw body) is accepted, as GitHub advises."""
    check = SignatureCheck(headers, secret)
    check.update(body)
    check.verify()


def signature_header(headers: Mapping[str, str]) -> str:
    """The hex digest the sender claims; 401 when the header is missing or malformed."""
    signature = header(headers, SIGNATURE)
    if signature is None:
        raise WebhookRejected(401, f"missing {SIGNATURE} header")
    if not signature.startswith("sha256="):
        raise WebhookRejected(401, f"{SIGNATURE} must start with 'sha256='")
    return signature.removeprefix("sha256=").lower()


def parse_delivery(
    headers: Mapping[str, str], body: bytes, secret: str, host: str = "github.com"
) -> Delivery:
    """Verify then parse; the signature is checked before any byte of the body is trusted."""
    verify_signature(headers, body, secret)
    return parse_verified(headers, body, host)


def parse_verified(headers: Mapping[str, str], body: bytes, host: str) -> Delivery:
    """Parse a body whose signature `SignatureCheck` has verified, as sent by GitHub at `host`."""
    event = header(headers, "X-GitHub-Event")
    if event is None:
        raise WebhookRejected(400, "missing X-GitHub-Event header")
    delivery_id = header(headers, "X-GitHub-Delivery")
    if delivery_id is None:
        raise WebhookRejected(400, "missing X-GitHub-Delivery header")
    if len(delivery_id) > 100:
        raise WebhookRejected(400, "X-GitHub-Delivery is longer than 100 characters")
    payload, text = json_object(headers.get("Content-Type"), body)
    return delivery_of(host, delivery_id, event, payload, text)


# The job each handled event asks for, by `event` or `event.action`.
_JOB_KINDS = {
    "push": JobKind.PUSH,
    "check_run.rerequested": JobKind.RERUN,
    "check_run.requested_action": JobKind.ACTION,
    "installation": JobKind.HOUSEKEEPING,
    "installation_repositories": JobKind.HOUSEKEEPING,
    "pull_request": JobKind.PROPOSAL,
    "merge_group": JobKind.PROPOSAL,
    "issue_comment": JobKind.COMMAND,
}
HANDLED_EVENTS = frozenset(_JOB_KINDS)
_FILTERED = frozenset({JobKind.PROPOSAL, JobKind.COMMAND})  # only some actions ask for work


def plan_work(delivery: Delivery) -> JobKind | None:
    """The job kind a delivery asks for, or None when it is acknowledged and ignored."""
    kind = _JOB_KINDS.get(delivery.event)
    if kind in _FILTERED:
        return kind if asks_for_work(delivery.event, delivery.payload) else None
    kind = _JOB_KINDS.get(delivery.event) or _JOB_KINDS.get(f"{delivery.event}.{delivery.action}")
    if kind is JobKind.PUSH and not is_branch_push(delivery.payload):
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


# Forgejo and Gitea also send X-GitHub-Event and X-Hub-Signature-256; GitHub sends none of these.
OTHER_FORGES = ("X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event")


def refuse_other_forges(headers: Mapping[str, str]) -> None:
    """400 for a Forgejo or Gitea delivery, even one signed with GitHub's secret (a shared
    secret): its clone URL is on that forge, which must never get GitHub's token."""
    for name in OTHER_FORGES:
        if header(headers, name) is not None:
            raise WebhookRejected(
                400, f"a Forgejo or Gitea delivery ({name}); its webhook goes to /webhooks/forgejo"
            )


class GitHubIntake:
    """`POST /webhooks/github` (`forges.base.Intake`): GITHUB_WEBHOOK_SECRET signs every
    delivery of the one configured GitHub."""

    forge_kind = "github"

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.github_webhook_secret
        self.host = settings.github_host

    def disabled_reason(self) -> str | None:
        if self._secret:
            return None
        return "webhooks are disabled: GITHUB_WEBHOOK_SECRET is not configured"

    def signature_check(self, headers: Mapping[str, str]) -> SignatureCheck:
        assert self._secret is not None  # the handler asks `disabled_reason` first
        return SignatureCheck(headers, self._secret.reveal(), self.host)

    def parse_verified(
        self, headers: Mapping[str, str], body: bytes, matched: tuple[str, ...]
    ) -> Delivery:
        refuse_other_forges(headers)
        return parse_verified(headers, body, matched[0])

    def is_ping(self, delivery: Delivery) -> bool:
        return delivery.event == "ping"

    def plan_work(self, delivery: Delivery) -> JobKind | None:
        return plan_work(delivery)
