"""Intake rules, sans I/O: signatures, headers, JSON, and which deliveries mean work."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from ogdc_hooks.forges.github.webhooks import SignatureCheck, parse_delivery, plan_work
from ogdc_hooks.webhooks.events import WebhookRejected
from tests.webhooks.signing import signed_delivery

SECRET = "It's a Secret to Everybody"
PUSH = {
    "ref": "refs/heads/main",
    "before": "a" * 40,
    "after": "b" * 40,
    "deleted": False,
    "repository": {"full_name": "octo/recipes"},
    "sender": {"login": "octocat"},
}


def _rejected(headers: dict[str, str], body: bytes) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        parse_delivery(headers, body, SECRET)
    return caught.value


def test_githubs_documented_example_signature_verifies() -> None:
    # The example of GitHub's "Validating webhook deliveries" page.
    headers = {
        "X-Hub-Signature-256": (
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        ),
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "1",
    }
    with pytest.raises(WebhookRejected) as caught:
        parse_delivery(headers, b"Hello, World!", SECRET)
    assert caught.value.status == 400  # signature accepted; the body is just not JSON


def test_a_signed_push_parses() -> None:
    headers, body = signed_delivery(PUSH, SECRET, delivery="d-1")
    delivery = parse_delivery(headers, body, SECRET)
    assert (delivery.id, delivery.event, delivery.repository) == ("d-1", "push", "octo/recipes")
    assert json.loads(delivery.payload_json) == PUSH
    assert plan_work(delivery) == "push"


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        (lambda h, b: (h | {"X-Hub-Signature-256": ""}, b), 401, "missing X-Hub-Signature-256"),
        (lambda h, b: ({k: v for k, v in h.items() if "Signature" not in k}, b), 401, "missing"),
        (lambda h, b: (h, b + b" "), 401, "signature does not match"),
        (lambda h, b: (h | {"X-Hub-Signature-256": "sha1=abc"}, b), 401, "must start with"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-GitHub-Event"}, b), 400, "Event"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-GitHub-Delivery"}, b), 400, "Deliv"),
    ],
)
def test_bad_headers_and_signatures_are_refused(change, status, detail) -> None:  # type: ignore[no-untyped-def]
    headers, body = change(*signed_delivery(PUSH, SECRET))
    rejected = _rejected(headers, body)
    assert rejected.status == status
    assert detail in rejected.detail


def test_wrong_secret_is_401() -> None:
    headers, body = signed_delivery(PUSH, "another secret")
    assert _rejected(headers, body).status == 401


@pytest.mark.parametrize(
    ("body", "detail"),
    [(b"{not json", "malformed JSON"), (b"[1, 2]", "must be an object"), (b"\xff\xfe", "UTF-8")],
)
def test_malformed_bodies_are_400(body: bytes, detail: str) -> None:
    headers, signed_body = signed_delivery(body, SECRET)
    rejected = _rejected(headers, signed_body)
    assert rejected.status == 400
    assert detail in rejected.detail


def test_form_encoded_payloads_are_accepted() -> None:
    body = urllib.parse.urlencode({"payload": json.dumps(PUSH)}).encode()
    headers, _ = signed_delivery(body, SECRET)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    assert parse_delivery(headers, body, SECRET).payload == PUSH


@pytest.mark.parametrize(
    ("event", "payload", "work"),
    [
        ("push", PUSH, "push"),
        ("push", PUSH | {"ref": "refs/tags/v1"}, None),
        ("push", PUSH | {"deleted": True, "after": "0" * 40}, None),
        ("check_run", {"action": "rerequested"}, "rerequest"),
        ("check_run", {"action": "completed"}, None),
        ("installation", {"action": "created"}, "installation"),
        ("installation_repositories", {"action": "added"}, "installation"),
        ("ping", {"zen": "Keep it simple."}, None),
        ("issues", {"action": "opened"}, None),
    ],
)
def test_which_deliveries_mean_work(
    event: str, payload: dict[str, object], work: str | None
) -> None:
    headers, body = signed_delivery(payload, SECRET, event=event)
    assert plan_work(parse_delivery(headers, body, SECRET)) == work


def test_the_signature_check_is_fed_in_chunks() -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    headers, _ = signed_delivery(body, SECRET)
    check = SignatureCheck(headers, SECRET)
    for start in range(0, len(body), 5):
        check.update(body[start : start + 5])
    check.verify()
    wrong = SignatureCheck(headers, SECRET)
    wrong.update(body + b" ")
    with pytest.raises(WebhookRejected, match="does not match"):
        wrong.verify()
    with pytest.raises(WebhookRejected, match="missing X-Hub-Signature-256"):
        SignatureCheck({}, SECRET)
