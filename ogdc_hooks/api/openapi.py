"""The OpenAPI 3.1 document of the API, assembled from the route modules.

Each route module documents its own operations (`openapi_paths`, written with
`operation`) and names the pydantic models they use (`openapi_models`). The
builder adds what the middlewares decide, so it cannot drift from them:
security and 401/403 from `@public`/`@admin_only`, and 400/413/415/422 for
operations that read a body. It refuses to build when a route has no
documented operation or an operation no route.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ogdc_hooks.api.context import OPENAPI_DOCUMENT
from ogdc_hooks.api.security import is_admin_only, is_public, public

SECURITY_SCHEME = "OAuth2PasswordBearer"
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


class Error(BaseModel):
    """Every error answer of the API."""

    detail: str


class ApiModule(Protocol):
    """What `create_app` needs from a module of routes."""

    routes: web.RouteTableDef
    openapi_paths: dict[str, dict[str, Any]]
    openapi_models: tuple[type[BaseModel], ...]


class OpenApiMismatch(ValueError):
    """A route and its documentation disagree."""


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _content(payload: type[BaseModel] | str) -> dict[str, Any]:
    if isinstance(payload, str):  # a media type of free-form text
        return {payload: {"schema": {"type": "string"}}}
    return {"application/json": {"schema": schema_ref(payload)}}


def operation(
    summary: str,
    *,
    responses: Mapping[int, tuple[str, type[BaseModel] | str]],
    errors: Mapping[int, str] | None = None,
    body: Mapping[str, type[BaseModel]] | None = None,
    parameters: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One documented operation: its success answers (model, or media type of text),
    its own error answers, the media types of its body and its parameters."""
    documented: dict[str, Any] = {
        str(status): {"description": description, "content": _content(payload)}
        for status, (description, payload) in responses.items()
    }
    for status, description in (errors or {}).items():
        documented[str(status)] = _error(description)
    op: dict[str, Any] = {"summary": summary, "responses": documented}
    if parameters:
        op["parameters"] = [dict(parameter) for parameter in parameters]
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema_ref(model)} for media, model in body.items()},
        }
    return op


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _with_middleware_answers(op: dict[str, Any], handler: object) -> dict[str, Any]:
    op = {**op, "responses": dict(op["responses"])}
    responses = op["responses"]
    if "requestBody" in op:
        responses.setdefault("400", _error("The body cannot be read (bad JSON or encoding)"))
        responses.setdefault("413", _error("The body is too large"))
        responses.setdefault("415", _error("The body is not of a media type listed here"))
        responses.setdefault("422", _error("A field is missing, unknown or invalid"))
    if is_public(handler):
        if is_admin_only(handler):
            name = getattr(handler, "__name__", handler)
            raise OpenApiMismatch(f"{name} is both public and admin-only")
        return op
    op["security"] = [{SECURITY_SCHEME: []}]
    responses.setdefault("401", _error("The token is missing, invalid or expired"))
    if is_admin_only(handler):
        responses.setdefault("403", _error("The token is not an admin's"))
    return op


def full_path(root_path: str, path: str) -> str:
    """`path` under `API_ROOT_PATH`."""
    return path if root_path == "/" else root_path + path


def build_document(modules: Iterable[ApiModule], *, root_path: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    models: list[type[BaseModel]] = [Error]
    for module in modules:
        documented = {
            (path, method) for path, item in module.openapi_paths.items() for method in item
        }
        for route in module.routes:
            if not isinstance(route, web.RouteDef):
                raise OpenApiMismatch(f"{route!r}: only plain routes are supported")
            method = route.method.lower()
            try:
                op = module.openapi_paths[route.path][method]
            except KeyError:
                raise OpenApiMismatch(f"{route.method} {route.path} is not documented") from None
            documented.discard((route.path, method))
            item = paths.setdefault(full_path(root_path, route.path), {})
            item[method] = _with_middleware_answers(op, route.handler)
        if documented:
            raise OpenApiMismatch(f"documented but not routed: {sorted(documented)}")
        models.extend(module.openapi_models)
    _, schemas = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "ogdc-hooks API", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "oauth2",
                    "flows": {
                        "password": {"tokenUrl": full_path(root_path, "/token"), "scopes": {}}
                    },
                }
            },
        },
    }


routes = web.RouteTableDef()


@routes.get("/openapi.json")
@public
async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_DOCUMENT])


openapi_paths: dict[str, dict[str, Any]] = {
    "/openapi.json": {
        "get": {
            "summary": "This OpenAPI document",
            "responses": {
                "200": {
                    "description": "The OpenAPI 3.1 document of the API",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
}
openapi_models: tuple[type[BaseModel], ...] = ()
