"""The one redaction engine: known secret values, then credential-looking patterns, replaced
by a marker. Secrets should never reach a log, a check, a status or an error in the first
place; this is the last line of defence for the ones that slip through.

Each place that needs one builds a `Redactor` with its patterns and marker: log lines
(`logs.RedactionFilter`) mask `key=value` pairs whose key names a secret; text for a forge
(`forge_patterns`, `forges/<forge>/redact.py`) masks that forge's token shapes too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

Pattern = tuple[re.Pattern[str], str]  # a regex and its replacement (may use groups)

PEM_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
)
# A JSON Web Token anywhere (header and payload are base64url JSON, so start with "eyJ").
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
# Credentials inside URLs: scheme://user:password@host
URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]*(?::[^/\s@]*)?@")
# `key=value` / `"key": "value"` where the key names a secret: group 1 is the key and its
# separator, group 2 the value.
SECRET_PAIR = re.compile(
    r"(?i)(\b[\w-]*(?:pass(?:word|wd)?|secret|token|authorization|private_key|api_key)"
    r"[\w-]*[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]+)"
)
FORGE_MARK = "[redacted]"


def forge_patterns(*token_shapes: re.Pattern[str]) -> tuple[Pattern, ...]:
    """What text for a forge is masked for: keys, JWTs, Authorization headers, bearer tokens
    and URL credentials, plus that forge's own `token_shapes` (matched whole)."""
    mark = FORGE_MARK
    return (
        (PEM_KEY, mark),
        *((shape, mark) for shape in token_shapes),
        (JWT, mark),  # App JWTs, Argo bearer tokens
        (
            re.compile(r"(?i)\b(authorization\s*[:=]\s*)(?:(?:bearer|token|basic)\s+)?\S+"),
            rf"\1{mark}",
        ),
        (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1{mark}"),
        (URL_CREDENTIALS, rf"\1{mark}@"),
    )


class Redactor:
    """Masks `secrets` (longest first, so one containing another goes whole) and `patterns`.

    `triggers` (lower-case words) let most text skip the regexes: text containing none of
    them cannot match a pattern. Secrets shorter than `min_secret` are not worth masking.
    """

    def __init__(
        self,
        patterns: Sequence[Pattern],
        mark: str,
        secrets: Iterable[str] = (),
        *,
        triggers: Sequence[str] | None = None,
        min_secret: int = 1,
    ) -> None:
        self.mark = mark
        self._patterns = tuple(patterns)
        # One search for any trigger: the common case (no trigger) is one C call.
        self._triggers = (
            re.compile("|".join(map(re.escape, triggers)) or "(?!)")  # none: nothing matches
            if triggers is not None
            else None
        )
        self._min_secret = min_secret
        self._secrets = self._sorted(secrets)

    def _sorted(self, secrets: Iterable[str]) -> tuple[str, ...]:
        chosen = {s for s in secrets if s and len(s) >= self._min_secret}
        return tuple(sorted(chosen, key=len, reverse=True))

    def __call__(self, text: str, secrets: Iterable[str] = ()) -> str:
        """`text` with this redactor's and the call's `secrets` and patterns masked."""
        for secret in (*self._secrets, *self._sorted(secrets)) if secrets else self._secrets:
            if secret in text:
                text = text.replace(secret, self.mark)
        if self._triggers is not None and not self._triggers.search(text.lower()):
            return text
        for pattern, replacement in self._patterns:
            text = pattern.sub(replacement, text)
        return text


def without_credentials(url: str) -> str:
    """`url` without any user name or password, so that none is ever stored or shown."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
