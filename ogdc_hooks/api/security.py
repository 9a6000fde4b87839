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

Two kinds of token are accepted: the service's own (`POST /token`, HS256) and,
when `OIDC_CLIENT_SECRETS_FILE` names a provider, the provider's access tokens
(`auth/oidc.py`), whose user is the one the username claim names, created on
first use; such a token is an admin's when it carries `OGDC_SCOPE_ADMIN`.

`ACCESS_MODE` (ogdc-runner 0.4.2) decides what a request without a token may do:
`authenticated` nothing; `read_only` read (GET, HEAD) and never change anything,
token or not; `open` everything. A request without a token in those modes acts
as the local `admin`; one with a token is still checked and acts as its user.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from ogdc_hooks.api.context import AUTHENTICATED_USER, OIDC, SETTINGS, TOKENS, USERS
from ogdc_hooks.api.errors import api_error
from ogdc_hooks.auth import rules
from ogdc_hooks.auth.oidc import Identity, TokenRefused
from ogdc_hooks.auth.tokens import InvalidToken
from ogdc_hooks.auth.users import ADMIN_NAME, Account
from ogdc_hooks.logs import log_event

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_PUBLIC = "__ogdc_public__"
_ADMIN_ONLY = "__ogdc_admin_only__"
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_USERNAME = re.compile(rules.USERNAME_PATTERN)


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


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("not a Bearer token")
    return token.strip()


async def _provider_identity(request: web.Request, token: str, local: InvalidToken) -> Identity:
    provider = request.app.get(OIDC)
    if provider is None:
        raise _unauthorized(str(local))
    try:
        return await provider.verify(token, time.time())
    except TokenRefused as err:
        raise _unauthorized(f"local: {local}; provider: {err}") from None


async def _signed_in_user(request: web.Request, identity: Identity) -> Account:
    """The user a provider token names, created on first use, admin as the token says."""
    name = identity.name
    if len(name) > rules.USERNAME_MAX or not _USERNAME.match(name):
        raise _unauthorized("the provider's user name is not a valid user name here")
    if name == ADMIN_NAME:
        raise _unauthorized("the provider's user is named like the local admin")
    user = await request.app[USERS].signed_in(name)
    if user is None or not user.is_active:
        raise _unauthorized("single sign-on user disabled here")
    return dataclasses.replace(user, is_admin=identity.is_admin)


async def token_user(request: web.Request, token: str) -> Account:
    """The user `token` (local or the provider's) belongs to; 401 if it cannot be trusted."""
    try:
        subject = request.app[TOKENS].subject(token, time.time())
    except InvalidToken as local:
        identity = await _provider_identity(request, token, local)
        return await _signed_in_user(request, identity)
    user = await request.app[USERS].active(subject)
    if user is None:
        raise _unauthorized("user deleted, re-created, disabled or its password changed")
    return user


async def _tokenless_user(request: web.Request) -> Account:
    """Whom a request without a token acts as, where ACCESS_MODE lets it in at all."""
    mode = request.app[SETTINGS].access_mode
    if mode == "authenticated":
        raise _unauthorized("no Authorization header")
    user = await request.app[USERS].get(ADMIN_NAME)
    assert user is not None  # ensured at start
    return user


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = request.match_info.handler
    if request.match_info.http_exception is not None or is_public(route_handler):
        return await handler(request)
    mode = request.app[SETTINGS].access_mode
    if mode == "read_only" and request.method not in SAFE_METHODS:
        raise api_error(
            403, "This service is read-only (ACCESS_MODE=read_only): it changes nothing."
        )
    token = _bearer_token(request)
    user = await (token_user(request, token) if token else _tokenless_user(request))
    if is_admin_only(route_handler) and not user.is_admin:
        raise api_error(403, "This needs an admin's token.")
    request[AUTHENTICATED_USER] = user
    return await handler(request)
