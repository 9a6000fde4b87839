"""Who we are to GitHub: a GitHub App (JWT, installation tokens) or a plain token.

App mode signs a short RS256 JWT as the App, exchanges it for an
installation token (`POST /app/installations/{id}/access_tokens`), and keeps
that token until 5 minutes before it expires; concurrent callers for one
installation wait for a single exchange. Token mode hands out
`GITHUB_TOKEN`. Either way a caller gets a `Grant`: the token and the name
of its rate-limit bucket.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ogdc_hooks.forges.github.errors import PermanentForgeError
from ogdc_hooks.forges.github.transport import Transport
from ogdc_hooks.settings import Secret

log = logging.getLogger(__name__)

JWT_BACKDATE = 60  # GitHub's advice against clock drift: issue the JWT a minute in the past
JWT_LIFETIME = 9 * 60  # counted from the backdated issue time; GitHub allows at most 10 minutes
JWT_REUSE = 5 * 60  # sign a new JWT after this long
TOKEN_REFRESH_MARGIN = 5 * 60.0  # replace an installation token this long before it expires


@dataclass(frozen=True)
class Grant:
    """A token to call GitHub with, and `key`, the rate-limit bucket it draws from."""

    key: str
    token: Secret
    installation_id: int | None = None


@dataclass(frozen=True)
class InstallationToken:
    token: Secret
    expires_at: float  # seconds since the epoch

    def fresh(self, now: float, margin: float = TOKEN_REFRESH_MARGIN) -> bool:
        return now < self.expires_at - margin


def parse_installation_token(data: Any) -> InstallationToken:
    """The answer of the access-token endpoint: `{"token": ..., "expires_at": ISO 8601}`."""
    try:
        expires = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
        token = str(data["token"])
    except (TypeError, KeyError, ValueError):
        raise PermanentForgeError(
            "GitHub's installation token answer lacks token or expiry"
        ) from None
    if expires.tzinfo is None or not token:
        raise PermanentForgeError("GitHub's installation token answer lacks token or expiry")
    return InstallationToken(Secret(token), expires.timestamp())


def load_app_key(private_key: Secret) -> RSAPrivateKey:
    """The App's RSA private key from PEM; ValueError (without the key) when it is not one."""
    try:
        key = load_pem_private_key(private_key.reveal().encode(), password=None)
    except (ValueError, TypeError) as err:
        raise ValueError(f"not a PEM private key ({type(err).__name__})") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("not an RSA private key (GitHub Apps sign with RS256)")
    return key


def app_jwt(app_id: str, key: RSAPrivateKey, now: float) -> str:
    """A JWT that authenticates as the App for at most `JWT_LIFETIME - JWT_BACKDATE` seconds."""
    issued = int(now) - JWT_BACKDATE
    return jwt.encode({"iat": issued, "exp": issued + JWT_LIFETIME, "iss": app_id}, key, "RS256")


class TokenCredentials:
    """Token mode: every repository is reached with `GITHUB_TOKEN`."""

    app_mode = False

    def __init__(self, token: Secret) -> None:
        self._grant = Grant("token", token)

    async def grant(self, repository: str, installation_id: int | None = None) -> Grant:
        return self._grant

    def forget(self, grant: Grant) -> None:
        """A refused personal token cannot be renewed; nothing to drop."""


class AppCredentials:
    """App mode: installation tokens, one exchange per installation at a time, cached."""

    app_mode = True

    def __init__(self, transport: Transport, *, app_id: str, private_key: Secret) -> None:
        self._transport = transport
        self._app_id = app_id
        self._key = load_app_key(private_key)
        self._jwt: tuple[str, float] | None = None  # (token, signed at)
        self._tokens: dict[int, InstallationToken] = {}
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._installations: dict[str, int] = {}  # "owner/name" -> installation id

    async def grant(self, repository: str, installation_id: int | None = None) -> Grant:
        """An installation token for `repository`, finding its installation if not given."""
        if installation_id is None:
            installation_id = await self.installation_for(repository)
        else:
            self._installations[repository.lower()] = installation_id
        token = await self.installation_token(installation_id)
        return Grant(f"installation:{installation_id}", token.token, installation_id)

    def forget(self, grant: Grant) -> None:
        """Drop a token GitHub refused (revoked), so that the next grant exchanges anew."""
        if grant.installation_id is not None:
            cached = self._tokens.get(grant.installation_id)
            if cached is not None and cached.token == grant.token:
                del self._tokens[grant.installation_id]

    async def installation_token(self, installation_id: int) -> InstallationToken:
        cached = self._tokens.get(installation_id)
        if cached is not None and cached.fresh(self._transport.clock()):
            return cached
        async with self._locks[installation_id]:
            cached = self._tokens.get(installation_id)  # another caller may have just exchanged
            if cached is not None and cached.fresh(self._transport.clock()):
                return cached
            answer = await self._transport.call(
                "POST",
                "/app/installations/{installation_id}/access_tokens",
                {"installation_id": str(installation_id)},
                key="app",
                jwt=await self.app_jwt(),
            )
            token = parse_installation_token(answer)
            self._tokens[installation_id] = token
            log.info("github: new token for installation %s", installation_id)
            return token

    async def installation_for(self, repository: str) -> int:
        """The App's installation on `repository` (`GET /repos/{owner}/{repo}/installation`)."""
        known = self._installations.get(repository.lower())
        if known is not None:
            return known
        owner, _, name = repository.partition("/")
        answer = await self._transport.call(
            "GET",
            "/repos/{owner}/{repo}/installation",
            {"owner": owner, "repo": name},
            key="app",
            jwt=await self.app_jwt(),
        )
        try:
            installation_id = int(answer["id"])
        except (TypeError, KeyError, ValueError):
            raise PermanentForgeError(f"GitHub named no installation for {repository}") from None
        self._installations[repository.lower()] = installation_id
        return installation_id

    async def app_jwt(self) -> str:
        """The App's JWT (for `/app/...`, which refuses installation tokens), signed again
        (off the event loop) once it is `JWT_REUSE` old."""
        now = self._transport.clock()
        if self._jwt is None or now - self._jwt[1] >= JWT_REUSE:
            token = await asyncio.to_thread(app_jwt, self._app_id, self._key, now)
            self._jwt = (token, now)
        return self._jwt[0]


Credentials = TokenCredentials | AppCredentials
