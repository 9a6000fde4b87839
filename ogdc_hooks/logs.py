"""Logging: one line per request and per event, as text or JSON, never a secret.

Code logs events with `log_event(logger, "name", key=value, ...)`; the fields
land in the line as `key=value` pairs (text) or as JSON keys. Every line
carries the id of the request it belongs to (`REQUEST_ID`).

Secrets are kept out at the source; `RedactionFilter` is the second line of
defence: it masks known secret values, bearer tokens, JWTs and the values of
password/secret/token-like keys in every line, field and traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from ogdc_hooks.redact import PEM_KEY, SECRET_PAIR, Pattern, Redactor

REQUEST_ID: ContextVar[str | None] = ContextVar("ogdc_request_id", default=None)

REDACTED = "[REDACTED]"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_NEEDS_QUOTES = re.compile(r'[\s"=]')  # with an unprintable character, or empty
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|token|authorization|private_key|api_key|credential|cookie", re.I
)
_PATTERNS: tuple[Pattern, ...] = (
    # "Bearer <anything>", as in an Authorization header or an error message
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), r"\1 " + REDACTED),
    # a JSON Web Token anywhere (header and payload are base64url JSON, so start with "eyJ")
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # key=value / "key": "value" where the key names a secret
    (SECRET_PAIR, r"\1" + REDACTED),
    (PEM_KEY, REDACTED),
)
# Text without any of these (lower-cased) cannot match a pattern: most lines skip the regexes.
_TRIGGERS = ("bearer", "eyj", "pass", "secret", "token", "authorization", "private", "api_key")


def sane_request_id(incoming: str | None) -> str:
    """The caller's `X-Request-Id` when it is short and plain, else a new one."""
    if incoming is not None and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


@functools.lru_cache(maxsize=1024)
def _sensitive(key: str) -> bool:
    """Whether a field's key names a secret; cached, as the same few keys recur on every line."""
    return _SENSITIVE_KEY.search(key) is not None


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event line with structured fields."""
    logger.log(level, event, extra={"fields": fields})


class RedactionFilter(logging.Filter):
    """Masks secrets in a record's message, fields and traceback before any handler writes it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.redact = Redactor(_PATTERNS, REDACTED, secrets, triggers=_TRIGGERS, min_secret=4)

    def _value(self, key: str, value: Any) -> Any:
        if _sensitive(key):
            return REDACTED
        if value is None or type(value) in (int, float, bool):  # cannot hold a secret's text
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {str(k): self._value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._value(key, item) for item in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            named = ((str(k), v) for k, v in fields.items())
            record.fields = {k: self._value(k, v) for k, v in named}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
    request_id = REQUEST_ID.get()
    if request_id is not None:
        fields.setdefault("request_id", request_id)
    return fields


def _text_value(value: Any) -> str:
    if isinstance(value, int | float):  # the common case, cheaply
        return str(value).lower() if isinstance(value, bool) else str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or not text.isprintable() or _NEEDS_QUOTES.search(text):
        return json.dumps(text)  # quoted, with control characters escaped
    return text


def _escaped(text: str) -> str:
    """`text` with control characters written as escapes, so that a value from a request
    (a path with ESC or a newline) cannot forge or garble a log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _trailer(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    return record.exc_text or None


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message key=value ...`; a traceback, if any, follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{k}={_text_value(v)}" for k, v in _fields(record).items())
        message = _escaped(record.getMessage())
        line = f"{_timestamp(record)} {record.levelname} {record.name} {message}"
        line = f"{line} {pairs}" if pairs else line
        trailer = _trailer(record, self)
        return f"{line}\n{trailer}" if trailer else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            document.setdefault(key, value)
        trailer = _trailer(record, self)
        if trailer:
            document["exception"] = trailer
        return json.dumps(document, default=str)


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger for the service: a request it cannot parse (malformed HTTP,
    which anyone can send) is one warning line, not a traceback; anything else keeps its
    traceback."""

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        if not isinstance(error, BaseException):
            error = sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            reason = f"{type(error).__name__}: {getattr(error, 'message', '') or error}"
            remote = args[0] if args else None
            log_event(
                self.logger, "malformed_request", logging.WARNING, remote=remote, reason=reason
            )
            return
        super().exception(msg, *args, **kwargs)


def configure_logging(log_format: str, level: str, secrets: Iterable[str] = ()) -> None:
    """Send every log line to stderr in `log_format` ("text" or "json"), redacted.

    `secrets` are the configured secret values, masked wherever they appear.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RedactionFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries speak only when something is wrong; our own middleware logs each request.
    for noisy in ("aiohttp.access", "sqlalchemy", "alembic", "asyncio", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
