"""Last line of defence for text sent to GitHub: `ogdc_hooks.redact` with GitHub's token shapes.

Secrets should never reach a check, a status, an error or a log in the first
place; this catches the ones that slip through (a token echoed in a git
error, a URL with credentials in a message) before they leave the process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ogdc_hooks.redact import FORGE_MARK, Redactor, forge_patterns

MARK = FORGE_MARK

_REDACTOR = Redactor(
    forge_patterns(
        # personal, OAuth, user-to-server, server-to-server (installation), refresh tokens
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
        re.compile(r"\bv1\.[0-9a-f]{40}\b"),  # old-style installation tokens
    ),
    MARK,
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known `secrets` and credential-looking strings replaced by a marker."""
    return _REDACTOR(text, secrets)
