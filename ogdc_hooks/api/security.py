"""Every route needs a valid token unless its handler says otherwise.

The aiohttp form of ogdc-runner's service design
(https://github.com/QGreenland-Net/ogdc-runner/blob/main/docs/architecture/service.md):

    @routes.get("/version")
    @public                          # open to anyone: the one way to open a route
    async def version(request): ...

    @routes.get("/user")             # closed by default: a valid token is required
    async def current_user(request):
        user = authenticated_user(request)   # ogdc-runner's AuthenticatedUserDependency
        ...

    @routes.post("/create_user")
    @admin_only                      # a valid token of an admin is required
    async def create_user(request): ...

The middleware checks the token before the handler runs: 401 with
`WWW-Authenticate: Bearer` for a missing, malformed, expired or forged token
or one whose user was deleted or disabled; 403 for a non-admin on an admin
route.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from ogdc_hooks.api.context import AUTHENTICATED_USER, TOKENS, USERS
from ogdc_hooks.api.errors import api_error
from ogdc_hooks.auth.tokens import InvalidToken
from ogdc_hooks.auth.users import Account
from ogdc_hooks.logs import log_event

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_PUBLIC = "__ogdc_public__"
_ADMIN_ONLY = "__ogdc_admin_only__"
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


def public(handler: F) -> F:
    """Open `handler` to requests without a token."""
    setattr(handler, _PUBLIC, True)
    return handler


def admin_only(handler: F) -> F:
    """Allow `handler` only to an authenticated admin."""
    setattr(handler, _ADMIN_ONLY, True)
    return handler


def is_public(handler: object) -> bool:
    return getattr(handler, _PUBLIC, False) is True


def is_admin_only(handler: object) -> bool:
    return getattr(handler, _ADMIN_ONLY, False) is True


def authenticated_user(request: web.Request) -> Account:
    """The user whose token authenticated this request (never None on a closed route)."""
    try:
        return request[AUTHENTICATED_USER]
    except KeyError:
        raise RuntimeError(
            f"{request.match_info.handler.__name__} is public: it has no authenticated user"
        ) from None


def _unauthorized(reason: str) -> web.HTTPException:
    log_event(log, "auth_rejected", reason=reason)
    return api_error(401, "Could not validate credentials.", UNAUTHORIZED_HEADERS)


def _bearer_token(request: web.Request) -> str:
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        raise _unauthorized("no Authorization header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("not a Bearer token")
    return token.strip()


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = request.match_info.handler
    if request.match_info.http_exception is not None or is_public(route_handler):
        return await handler(request)
    try:
        subject = request.app[TOKENS].subject(_bearer_token(request), time.time())
    except InvalidToken as err:
        raise _unauthorized(str(err)) from None
    user = await request.app[USERS].active(subject)
    if user is None:
        raise _unauthorized("user deleted, re-created, disabled or its password changed")
    if is_admin_only(route_handler) and not user.is_admin:
        raise api_error(403, "This needs an admin's token.")
    request[AUTHENTICATED_USER] = user
    return await handler(request)
