"""Last line of defence: strip anything that looks like a credential from text sent or logged.

Secrets should never reach a check, a status, an error or a log in the first
place; this catches the ones that slip through (a token echoed in a git
error, a URL with credentials in a message) before they leave the process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MARK = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole blocks
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
        ),
        MARK,
    ),
    # GitHub tokens: personal, OAuth, user-to-server, server-to-server (installation), refresh
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), MARK),
    # Old-style installation tokens
    (re.compile(r"\bv1\.[0-9a-f]{40}\b"), MARK),
    # JSON web tokens (GitHub App JWTs, Argo bearer tokens)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MARK),
    # Authorization headers and bearer/token schemes
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*)(?:(?:bearer|token|basic)\s+)?\S+"), rf"\1{MARK}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1{MARK}"),
    # Credentials inside URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]*(?::[^/\s@]*)?@"), rf"\1{MARK}@"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known `secrets` and credential-looking strings replaced by a marker."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MARK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
