"""What the application shares with every handler and background task (typed app keys)."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from ogdc_hooks.auth.oidc import Provider
from ogdc_hooks.auth.throttle import LoginThrottle
from ogdc_hooks.auth.tokens import TokenVerifier
from ogdc_hooks.auth.users import Account, UserStore
from ogdc_hooks.db.engine import Database
from ogdc_hooks.jobs.supervise import Supervisor
from ogdc_hooks.settings import Settings, StartupError

__all__ = [
    "AUTHENTICATED_USER",
    "DATABASE",
    "DRIVER_POOL",
    "LOGIN_THROTTLE",
    "OPENAPI_DOCUMENT",
    "SETTINGS",
    "SUPERVISOR",
    "TOKENS",
    "USERS",
    "StartupError",
]

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)  # set once the startup context has opened it
# A plain asyncpg pool for the hottest statements (token users, webhook intake).
DRIVER_POOL = web.AppKey("driver_pool", asyncpg.Pool)
USERS = web.AppKey("users", UserStore)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
TOKENS = web.AppKey("tokens", TokenVerifier)
# The OpenID Connect provider, when OIDC_CLIENT_SECRETS_FILE is set (absent otherwise).
OIDC = web.AppKey("oidc", Provider)
OPENAPI_DOCUMENT = web.AppKey("openapi_document", dict[str, Any])
# Every background task runs through it; `/readyz` reads its health registry.
SUPERVISOR = web.AppKey("supervisor", Supervisor)

# Set by the security middleware on every request that is not public.
AUTHENTICATED_USER = web.RequestKey("authenticated_user", Account)
