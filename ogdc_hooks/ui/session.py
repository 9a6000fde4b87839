"""Who is looking at the dashboard: the session cookie, its CSRF token, and the `page`
decorator every dashboard handler wears.

The session is an aiohttp-session cookie encrypted and authenticated with Fernet
(a key derived from `OGDC_JWT_SECRET_KEY`), HTTP-only, `SameSite=Strict`, Secure when
the request came over https. It holds the access token `POST /token` would have
issued, so it ends exactly as that token does: after `auth.tokens.LIFETIME`, or at
once when the user is deleted, disabled or has the password changed. Every form
carries the session's CSRF token; a POST without it is refused before its handler runs.
"""

from __future__ import annotations

import base64
import functools
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from multidict import MultiDictProxy

from ogdc_hooks.api.context import SETTINGS
from ogdc_hooks.api.security import public, token_user
from ogdc_hooks.auth.tokens import LIFETIME
from ogdc_hooks.auth.users import Account

COOKIE = "ogdc_session"
TOKEN, CSRF = "token", "csrf"  # the session's keys
CSRF_FIELD = "csrf"  # the hidden field of every form
LIFETIME_S = int(LIFETIME.total_seconds())
# Scripts, styles and images come only from the service; nothing may frame the pages.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
UiHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Viewer:
    """The signed-in user and the CSRF token their forms carry."""

    user: Account
    csrf: str


VIEWER = web.RequestKey("ui_viewer", Viewer)
FORM = web.RequestKey("ui_form", MultiDictProxy[str | bytes | Any])
UI_PREFIX = web.AppKey("ui_prefix", str)  # API_ROOT_PATH + "/ui"


def session_key(jwt_secret: str) -> Fernet:
    """The cookie's key, derived from the token key so no other setting is needed."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"ogdc-hooks dashboard session"
    ).derive(jwt_secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def https(request: web.Request) -> bool:
    """Whether the browser reached us over https (itself, or through a proxy saying so)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


class SessionCookies(EncryptedCookieStorage):
    """Fernet cookies that expire with the token and are Secure whenever the request was
    https (the library takes one fixed `secure` for every request)."""

    def __init__(self, key: Fernet, path: str) -> None:
        super().__init__(
            key, cookie_name=COOKIE, max_age=LIFETIME_S, path=path, httponly=True, samesite="Strict"
        )

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        await super().save_session(request, response, session)
        cookie = response.cookies.get(self.cookie_name)
        if cookie is not None and https(request):
            cookie["secure"] = True


def ui_url(request: web.Request, path: str = "/", **query: str) -> str:
    url = request.app[UI_PREFIX] + path
    return f"{url}?{urlencode(query)}" if query else url


def csrf_token(session: Session) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF] = token
    return token


async def checked_form(request: web.Request, session: Session) -> MultiDictProxy[Any] | None:
    """The POSTed form when its CSRF token is the session's; None otherwise."""
    form = await request.post()
    given, expected = form.get(CSRF_FIELD), session.get(CSRF)
    if not isinstance(given, str) or not isinstance(expected, str):
        return None
    return form if hmac.compare_digest(given.encode(), expected.encode()) else None


def error_page(request: web.Request, status: int, detail: str) -> web.Response:
    values: dict[str, Any] = {"status": status, "detail": detail}
    viewer = request.get(VIEWER)
    if viewer is not None:  # signed in: the page keeps its navigation and sign-out
        values |= {"viewer": viewer.user, "csrf": viewer.csrf}
    return aiohttp_jinja2.render_template("error.html", request, values, status=status)


async def _viewer(request: web.Request, session: Session) -> Viewer | None:
    """The signed-in user; None (and the session ended) when the token no longer holds."""
    token = session.get(TOKEN)
    if not isinstance(token, str):
        return None
    try:
        user = await token_user(request, token)
    except web.HTTPUnauthorized:
        session.invalidate()
        return None
    return Viewer(user, csrf_token(session))


def _to_sign_in(request: web.Request, expired: bool) -> NoReturn:
    query = {"next": request.path_qs} if request.method == "GET" else {}
    if expired:
        query["expired"] = "1"
    raise web.HTTPSeeOther(ui_url(request, "/login", **query))


def page(
    *, anonymous: bool = False, admin: bool = False, changes: bool = False
) -> Callable[[UiHandler], UiHandler]:
    """A dashboard handler: signed in unless `anonymous` (an admin's only with `admin`),
    POSTs CSRF-checked, refused under ACCESS_MODE=read_only when it `changes` something,
    errors as HTML pages, the security headers on every answer.

    It is `public` to the token middleware: the session, not a bearer token, closes it."""

    def wrap(handler: UiHandler) -> UiHandler:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                response = await _guarded(
                    handler, request, anonymous=anonymous, admin=admin, changes=changes
                )
            except web.HTTPException as error:
                if error.status < 400:
                    error.headers.update(SECURITY_HEADERS)
                    raise
                detail = getattr(error, "detail", None) or error.reason
                response = error_page(request, error.status, detail)
                if "Retry-After" in error.headers:
                    response.headers["Retry-After"] = error.headers["Retry-After"]
            response.headers.update(SECURITY_HEADERS)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return public(run)

    return wrap


async def _guarded(
    handler: UiHandler, request: web.Request, *, anonymous: bool, admin: bool, changes: bool
) -> web.StreamResponse:
    if changes and request.app[SETTINGS].access_mode == "read_only":
        return error_page(
            request, 403, "This service is read-only (ACCESS_MODE=read_only): it changes nothing."
        )
    session = await get_session(request)
    if not anonymous:
        # a session that held a token, or a cookie too old to decrypt, has expired
        expired = TOKEN in session or (session.new and COOKIE in request.cookies)
        viewer = await _viewer(request, session)
        if viewer is None:
            _to_sign_in(request, expired=expired)
        if admin and not viewer.user.is_admin:
            return error_page(request, 403, "This page is for admins only.")
        request[VIEWER] = viewer
    if request.method == "POST":
        form = await checked_form(request, session)
        if form is None:
            return error_page(
                request,
                403,
                "This form is out of date or did not come from this site (no valid CSRF "
                "token); reload the page and try again.",
            )
        request[FORM] = form
    return await handler(request)
