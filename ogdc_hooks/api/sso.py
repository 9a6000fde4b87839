"""Single sign-on routes, as ogdc-runner 0.4.2's service has them: `GET /login`,
`GET /authorize` (the provider's redirect back) and `POST /refresh`.

`/login` starts the authorization code flow with PKCE (S256) and a random
`state`; both are bound to the browser by a short-lived cookie that this service
signs (an HS256 JWT under a key derived from `OGDC_JWT_SECRET_KEY`, so it can
never pass for an access token), valid for `/authorize` only. `/authorize`
checks that the `state` the provider returns is the cookie's, trades the code
and the verifier for the provider's tokens and shows them as ogdc-runner does,
`{"message", "token": {"access_token", "refresh_token"}}`, the JSON
`ogdc-hooks set-token --json-str` takes. `/refresh` trades a refresh token for
new tokens in the same shape.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ogdc_hooks.api.bodies import JSON, read_body
from ogdc_hooks.api.context import OIDC, SETTINGS, SUPERVISOR, USERS
from ogdc_hooks.api.errors import api_error
from ogdc_hooks.api.openapi import full_path, operation
from ogdc_hooks.api.security import public
from ogdc_hooks.auth.oidc import (
    KEYS_TASK,
    Provider,
    ProviderRefused,
    ProviderUnavailable,
    TokenRefused,
    load_client_secrets,
    pkce_pair,
)
from ogdc_hooks.logs import log_event
from ogdc_hooks.settings import Settings

log = logging.getLogger(__name__)

LOGIN_COOKIE = "ogdc_hooks_login"
LOGIN_SECONDS = 600  # a sign-in must come back from the provider within this
_STATE_PURPOSE = b"ogdc-hooks sign-in state"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 5.1
_START_AGAIN = "start again at /login"


class Tokens(BaseModel):
    access_token: str
    refresh_token: str | None = None


class TokenAnswer(BaseModel):
    """What `/authorize` and `/refresh` show, as ogdc-runner's (dataone-auth) do."""

    message: str
    token: Tokens
    user: str
    expires_in: int | None = None


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=16_384)
    scope: str | None = Field(default=None, max_length=1024)


def provider_for(settings: Settings, app: web.Application) -> Provider | None:
    """The provider `OIDC_CLIENT_SECRETS_FILE` names (its file read now), else None."""
    if settings.oidc_client_secrets_file is None:
        return None
    return Provider(
        client=load_client_secrets(settings.oidc_client_secrets_file),
        admin_scope=settings.scope_admin,
        username_claim=settings.oidc_username_claim,
        min_refresh_seconds=settings.oidc_jwks_min_refresh_seconds,
        health=app[SUPERVISOR].health,
    )


async def oidc_context(app: web.Application) -> AsyncIterator[None]:
    """Keep the provider's keys loaded (a supervised task) for the life of the app."""
    provider = app.get(OIDC)
    if provider is None:
        yield
        return
    provider.health.down(KEYS_TASK, "the provider's signing keys are not loaded yet")
    try:
        async with app[SUPERVISOR].running({KEYS_TASK: provider.keep_keys}):
            yield
    finally:
        await provider.close()


def _state_key(settings: Settings) -> bytes:
    key = settings.jwt_secret_key
    assert key is not None  # create_app refuses to start without one
    return hmac.new(key.reveal().encode(), _STATE_PURPOSE, hashlib.sha256).digest()


def _provider(request: web.Request) -> Provider:
    """The provider, where sign-in is on (upstream: 403 outside `authenticated` mode)."""
    mode = request.app[SETTINGS].access_mode
    if mode != "authenticated":
        raise api_error(403, f"Sign-in is disabled: ACCESS_MODE is {mode!r}.")
    provider = request.app.get(OIDC)
    if provider is None:
        raise api_error(404, "Single sign-on is not configured (OIDC_CLIENT_SECRETS_FILE).")
    return provider


def _unavailable(err: ProviderUnavailable) -> web.HTTPException:
    log_event(log, "oidc_provider_unavailable", level=logging.WARNING, reason=str(err))
    return api_error(
        503, "The sign-in provider cannot be reached; try again shortly.", {"Retry-After": "10"}
    )


routes = web.RouteTableDef()


@routes.get("/login")
@public
async def login(request: web.Request) -> web.Response:
    """Send the browser to the provider to sign in."""
    provider = _provider(request)
    state = secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair()
    try:
        target = await provider.authorization_url(state, challenge)
    except ProviderUnavailable as err:
        raise _unavailable(err) from None
    settings = request.app[SETTINGS]
    cookie = jwt.encode(
        {"state": state, "verifier": verifier, "exp": int(time.time()) + LOGIN_SECONDS},
        _state_key(settings),
        algorithm="HS256",
    )
    response = web.Response(status=302, headers={"Location": target, **_NO_STORE})
    response.set_cookie(
        LOGIN_COOKIE,
        cookie,
        max_age=LOGIN_SECONDS,
        path=full_path(settings.api_root_path, "/authorize"),
        secure=provider.redirect_uri.startswith("https://"),
        httponly=True,
        samesite="Lax",  # sent on the provider's top-level redirect back, not on sub-requests
    )
    return response


def _login_under_way(request: web.Request) -> str:
    """The code verifier of the sign-in this browser started, once its state matches."""
    query = request.query
    if "error" in query:
        error = query.get("error", "")[:40]
        raise api_error(400, f"The provider did not sign you in ({error}); {_START_AGAIN}.")
    code, state = query.get("code"), query.get("state")
    if not code or not state:
        raise api_error(400, f"The provider's answer has no code or state; {_START_AGAIN}.")
    cookie = request.cookies.get(LOGIN_COOKIE)
    try:
        claims = jwt.decode(cookie or "", _state_key(request.app[SETTINGS]), algorithms=["HS256"])
    except jwt.PyJWTError:
        raise api_error(
            400,
            f"No sign-in is under way in this browser (its cookie is missing or expired); "
            f"{_START_AGAIN}.",
        ) from None
    if not hmac.compare_digest(str(claims.get("state", "")), state):
        raise api_error(
            400, f"The sign-in state does not match the one this browser started; {_START_AGAIN}."
        )
    return str(claims["verifier"])


async def _answer(
    request: web.Request, provider: Provider, tokens: dict[str, Any], message: str
) -> web.Response:
    """Show the provider's tokens, once the access token is checked as every route will."""
    try:
        identity = await provider.verify(str(tokens["access_token"]), time.time())
    except TokenRefused as err:
        log_event(log, "oidc_token_unusable", level=logging.WARNING, reason=str(err))
        raise api_error(
            502,
            "The provider issued an access token this service does not accept; the operator "
            "should check the client's audience and OIDC_USERNAME_CLAIM.",
        ) from None
    await request.app[USERS].signed_in(identity.name)
    refresh = tokens.get("refresh_token")
    expires_in = tokens.get("expires_in")
    answer = TokenAnswer(
        message=message,
        token=Tokens(
            access_token=str(tokens["access_token"]),
            refresh_token=refresh if isinstance(refresh, str) else None,
        ),
        user=identity.name,
        expires_in=expires_in if isinstance(expires_in, int) else None,
    )
    log_event(log, "oidc_signed_in", user=identity.name, admin=identity.is_admin)
    return web.json_response(answer.model_dump(mode="json"), headers=_NO_STORE)


@routes.get("/authorize")
@public
async def authorize(request: web.Request) -> web.Response:
    """Where the provider sends the browser back: shows the tokens for the CLI."""
    provider = _provider(request)
    verifier = _login_under_way(request)
    try:
        tokens = await provider.exchange_code(request.query["code"], verifier)
    except ProviderUnavailable as err:
        raise _unavailable(err) from None
    except ProviderRefused as err:
        raise api_error(
            400, f"The provider refused the sign-in ({err.error[:40]}); {_START_AGAIN}."
        ) from None
    response = await _answer(request, provider, tokens, "Success")
    response.del_cookie(
        LOGIN_COOKIE, path=full_path(request.app[SETTINGS].api_root_path, "/authorize")
    )
    return response


@routes.post("/refresh")
@public
async def refresh(request: web.Request) -> web.Response:
    """Trade a refresh token for new tokens."""
    provider = _provider(request)
    body = await read_body(request, RefreshRequest, (JSON,))
    try:
        tokens = await provider.refresh(body.refresh_token, body.scope)
    except ProviderUnavailable as err:
        raise _unavailable(err) from None
    except ProviderRefused:
        raise api_error(
            401, "The refresh token is invalid or expired; sign in again at /login."
        ) from None
    return await _answer(request, provider, tokens, "Authorization successful")


# What every sign-in route may answer besides its own errors.
_SIGN_IN_ERRORS = {
    403: "Sign-in is disabled (ACCESS_MODE is not authenticated)",
    404: "Single sign-on is not configured",
    503: "The provider cannot be reached",
}
_UNACCEPTED = {502: "The provider's token is not accepted here (a configuration error)"}

openapi_paths: dict[str, dict[str, Any]] = {
    "/login": {
        "get": operation(
            "Sign in through the OpenID Connect provider (authorization code flow with PKCE)",
            responses={302: ("To the provider's sign-in page", "text/plain")},
            errors=_SIGN_IN_ERRORS,
        )
    },
    "/authorize": {
        "get": operation(
            "The provider's redirect back: shows the access and refresh tokens",
            parameters=[
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in ("code", "state", "error")
            ],
            responses={200: ("The provider's tokens", TokenAnswer)},
            errors={
                400: "The sign-in failed, or its state does not match this browser's",
                **_SIGN_IN_ERRORS,
                **_UNACCEPTED,
            },
        )
    },
    "/refresh": {
        "post": operation(
            "Trade a refresh token for new tokens",
            body={JSON: RefreshRequest},
            responses={200: ("New tokens", TokenAnswer)},
            errors={
                401: "The refresh token is invalid or expired",
                **_SIGN_IN_ERRORS,
                **_UNACCEPTED,
            },
        )
    },
}
openapi_models: tuple[type[BaseModel], ...] = (Tokens, TokenAnswer, RefreshRequest)
