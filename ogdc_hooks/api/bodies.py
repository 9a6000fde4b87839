"""Reading a request body into a pydantic model, with a clear 4xx for every bad body.

Forms (urlencoded or multipart) and JSON objects are read into the same
models; 415 names the media types accepted, 400 says the body cannot be
decoded, 422 lists each bad field with the rule it breaks (never its value,
which may be a password).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from typing import Any, TypeVar, get_args

from aiohttp import web
from pydantic import BaseModel, ValidationError, ValidationInfo
from pydantic.fields import FieldInfo

from ogdc_hooks.api.context import SETTINGS
from ogdc_hooks.api.errors import api_error

M = TypeVar("M", bound=BaseModel)

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON = "application/json"


def form_boolean(value: Any, info: ValidationInfo) -> Any:
    """A "before" validator: a form sends a boolean as the word true or false, and only so.

    Use on a `StrictBool` field, which then takes JSON's true/false and these words.
    """
    from_form = isinstance(info.context, dict) and info.context.get("form") is True
    if from_form and value in ("true", "false"):
        return value == "true"
    return value


# pydantic's error types, said as a rule the user can follow (its own text names regexes).
_RULES = {
    "missing": "is required",
    "extra_forbidden": "is not a field this route takes",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "dict_type": "must be an object",
    "model_type": "must be an object",
}


def _rule(problem: Any, model: type[BaseModel]) -> str:
    """What a field must be, in words; the field's description says it for patterns."""
    kind, context = problem["type"], problem.get("ctx") or {}
    if kind == "string_too_short":
        least = context.get("min_length", 1)
        return "must not be empty" if least == 1 else f"must have at least {least} characters"
    if kind == "string_too_long":
        return f"must have at most {context.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        field = model.model_fields.get(str(problem["loc"][0])) if problem["loc"] else None
        described = _description(field) if field is not None else None
        return f"must be {described.rstrip('.')}" if described else "is not in a form it accepts"
    return _RULES.get(kind, str(problem["msg"]))


def _description(field: FieldInfo) -> str | None:
    """The field's description, or that of the constrained type inside `X | None`."""
    if field.description:
        return field.description
    for option in get_args(field.annotation):
        for meta in getattr(option, "__metadata__", ()):
            if isinstance(meta, FieldInfo) and meta.description:
                return meta.description
    return None


def _problems(error: ValidationError, model: type[BaseModel]) -> str:
    parts = []
    for problem in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        parts.append(f"{where}: {_rule(problem, model)}")
    return "; ".join(parts)


async def _form_fields(request: web.Request) -> dict[str, Any]:
    try:
        form = await request.post()
    except (ValueError, AssertionError) as err:
        raise api_error(400, "The form cannot be decoded.") from err
    fields: dict[str, Any] = {}
    for key in form:
        values = form.getall(key)
        if len(values) > 1:
            raise api_error(422, f"{key}: given more than once")
        if not isinstance(values[0], str):
            raise api_error(422, f"{key}: must be text, not a file")
        fields[key] = values[0]
    return fields


async def _json_fields(request: web.Request) -> dict[str, Any]:
    try:
        document = json.loads(await request.text())
    except RecursionError:
        raise api_error(400, "The body's JSON is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError):  # also an integer of more than 4300 digits
        raise api_error(400, "The body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise api_error(422, "body: must be a JSON object")
    return document


async def read_body(request: web.Request, model: type[M], media_types: Collection[str]) -> M:
    """The body as `model`, from one of `media_types` (FORM also admits MULTIPART); 408 when
    it does not arrive within the read timeout (a slow sender holds nothing for long)."""
    media = request.content_type
    from_form = media in (FORM, MULTIPART) and FORM in media_types
    if not from_form and not (media == JSON and JSON in media_types):
        raise api_error(415, f"Send the body as {' or '.join(media_types)}.")
    seconds = request.app[SETTINGS].http_read_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            fields = await (_form_fields(request) if from_form else _json_fields(request))
    except TimeoutError:
        raise api_error(
            408,
            f"The body did not arrive within {seconds} s (OGDC_HTTP_READ_TIMEOUT_SECONDS).",
        ) from None
    return validated(model, fields, from_form=from_form)


def validated(model: type[M], fields: dict[str, Any], *, from_form: bool = False) -> M:
    """`fields` as `model`; 422 saying what is wrong with each field, in words."""
    try:
        return model.model_validate(fields, context={"form": from_form})
    except ValidationError as err:
        raise api_error(422, _problems(err, model)) from None
