"""Signing deliveries the way GitHub does, for tests and benchmarks."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any


def signed_delivery(
    payload: dict[str, Any] | bytes, secret: str, event: str = "push", delivery: str | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a delivery as GitHub sends it."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={signature}",
        "User-Agent": "GitHub-Hookshot/test",
    }
    return headers, body
