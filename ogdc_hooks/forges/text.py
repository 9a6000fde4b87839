"""Fitting text into GitHub's limits, and making it safe to send.

Check-run summaries and text are limited in bytes of UTF-8 (GitHub answers
"summary exceeds a maximum bytesize of 65535"), titles and status
descriptions in characters. Cuts never split a character and say that they cut.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ogdc_hooks.forges.github.redact import redact

ELLIPSIS = "…"


def clean(text: str) -> str:
    """`text` with credentials redacted and lone surrogates (unencodable) replaced."""
    return redact(text).encode("utf-8", "replace").decode("utf-8")


def fit_bytes(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, ending with a note when it had to be cut."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    note = f"\n\n{ELLIPSIS} (cut: {len(encoded):,} bytes did not fit in GitHub's {limit:,})"
    room = limit - len(note.encode("utf-8"))
    # A cut inside a multibyte character leaves an incomplete tail that "ignore" drops.
    return encoded[: max(0, room)].decode("utf-8", "ignore") + note


def fence(text: str) -> str:
    """A Markdown code fence longer than any backtick run in `text`, so `text` cannot escape it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def fit_chars(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def safe_url(url: str | None) -> str | None:
    """`url` if it is an http(s) URL without credentials in it, else None (not sent)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return url
