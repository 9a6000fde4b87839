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
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError, ValidationInfo

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


def _problems(error: ValidationError) -> str:
    parts = []
    for problem in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        parts.append(f"{where}: {problem['msg']}")
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
    except (ValueError, UnicodeDecodeError) as err:
        raise api_error(400, "The body is not valid JSON.") from err
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
    try:
        return model.model_validate(fields, context={"form": from_form})
    except ValidationError as err:
        raise api_error(422, _problems(err)) from None
