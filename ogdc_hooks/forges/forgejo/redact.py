"""Last line of defence for text sent to or read from Forgejo: `ogdc_hooks.redact`'s forge
patterns. Forgejo's access tokens are 40 hexadecimal characters, the shape of a commit SHA,
so they are masked as the known secrets they are, never by their shape.
"""

from __future__ import annotations

from collections.abc import Iterable

from ogdc_hooks.redact import FORGE_MARK, Redactor, forge_patterns

_REDACTOR = Redactor(forge_patterns(), FORGE_MARK)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known `secrets` and credential-looking strings replaced by a marker."""
    return _REDACTOR(text, secrets)
