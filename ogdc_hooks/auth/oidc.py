"""Single sign-on through an OpenID Connect provider, as ogdc-runner 0.4.2's service does it.

ogdc-runner (through DataONE's `dataone-auth`) reads `OIDC_CLIENT_SECRETS_FILE`,
a JSON file with `server_metadata_url`, `client_id`, `client_secret` and
`redirect_uris`, signs users in with the authorization code flow at the provider
(DataONE's Keycloak realm) and accepts the provider's access tokens as bearer
tokens. This module is that client, on aiohttp:

- `Provider.verify` checks an access token locally: its signature against the
  provider's JWKS (from the discovery document), with only the asymmetric
  algorithms the provider announces (never `none`, never HMAC, whose "key"
  would be public), and `iss`, `aud`/`azp`, `exp`, `nbf`. Keys are kept in
  memory; an unknown `kid` (the provider rotated its keys) refetches them, at
  most once per `min_refresh_seconds` and within `HTTP_TIMEOUT`, so no request
  fetches keys as a matter of course and a flood of forged `kid`s costs nothing.
- `Provider.keep_keys` is the supervised task that loads the keys at start
  (until it succeeds; `/readyz` says so meanwhile) and refreshes them hourly.
- `Provider.authorization_url`, `exchange_code` and `refresh` are the code flow
  (with PKCE, S256) and the refresh grant at the provider's token endpoint.

Every failure is an `OidcError` whose message is in words: nothing a library
or the provider wrote reaches a user, and no token reaches a message.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ogdc_hooks.jobs.supervise import Health
from ogdc_hooks.logs import log_event
from ogdc_hooks.settings import Secret, SettingsError

log = logging.getLogger(__name__)

# Signature algorithms with a public verification key (RFC 7518 3.1, RFC 8037): only these
# may be accepted, whatever the provider announces.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
BASE_SCOPES = ("openid", "email", "profile")  # what dataone-auth asks for besides the admin scope
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)  # one call to the provider, start or request path
KEYS_REFRESH_SECONDS = 3600.0  # the keys are read again this often, rotation or not
KEYS_RETRY_SECONDS = (1.0, 30.0)  # first and largest wait between failed loads at start
LEEWAY_SECONDS = 30  # clock skew allowed on exp, nbf, iat
MAX_TOKEN_LENGTH = 16_384  # as dataone-auth: a bigger "token" is refused before parsing
REMEMBERED_TOKENS = 10_000  # verified tokens kept, so a token seen again costs no RSA check
KEYS_TASK = "oidc-keys"


class OidcError(Exception):
    """Single sign-on failed; the message is in words, for the user or the log."""


class ProviderUnavailable(OidcError):
    """The provider did not answer, or not as a provider does (HTTP 503 for the user)."""


class ProviderRefused(OidcError):
    """The provider answered with an OAuth error (a bad code, an expired refresh token)."""

    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.error = error  # the OAuth error code (RFC 6749 5.2), e.g. "invalid_grant"


class TokenRefused(OidcError):
    """The access token cannot be trusted; the message says why, for the log."""


class ClientSecrets(BaseModel):
    """The JSON of `OIDC_CLIENT_SECRETS_FILE`, as dataone-auth reads it (other keys ignored)."""

    model_config = ConfigDict(extra="ignore")

    server_metadata_url: str = Field(pattern=r"^https?://")
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    redirect_uris: list[str] = Field(min_length=1)


def load_client_secrets(path: Path) -> ClientSecrets:
    """The client of `path`, or `SettingsError` saying what is wrong with the file."""
    name = "OIDC_CLIENT_SECRETS_FILE"
    try:
        document = json.loads(path.read_text())
    except OSError as err:
        raise SettingsError(f"{name}: cannot read {path}: {err.strerror or err}") from None
    except ValueError:
        raise SettingsError(f"{name}: {path} is not JSON") from None
    try:
        return ClientSecrets.model_validate(document)
    except ValidationError as err:
        fields = ", ".join(sorted({str(e["loc"][0]) for e in err.errors() if e["loc"]}))
        raise SettingsError(
            f"{name}: {path} needs server_metadata_url (an http(s) URL), client_id, "
            f"client_secret and redirect_uris (a non-empty list); wrong or missing: "
            f"{fields or 'the whole document'}"
        ) from None


@dataclass(frozen=True)
class Identity:
    """Whom a valid provider token names, and whether it carries the admin scope or role."""

    name: str
    is_admin: bool
    expires: float


@dataclass(frozen=True)
class Metadata:
    """What the discovery document says that we use (OpenID Connect Discovery 1.0, 3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: frozenset[str]

    @classmethod
    def parse(cls, document: Any) -> Metadata:
        if not isinstance(document, dict):
            raise ValueError("the discovery document is not a JSON object")
        values = {}
        for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(key)
            if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
                raise ValueError(f"the discovery document has no {key} URL")
            values[key] = value
        announced = document.get("id_token_signing_alg_values_supported", ["RS256"])
        algorithms = frozenset(a for a in announced if isinstance(a, str)) & ASYMMETRIC_ALGORITHMS
        if not algorithms:
            raise ValueError("the provider announces no public-key signature algorithm")
        return cls(**values, algorithms=algorithms)


def _keys(document: Any, algorithms: frozenset[str]) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS by `kid`; keys for encryption or unusable here are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("the JWKS is not a JSON object with keys")
    found: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        alg = entry.get("alg")
        if entry.get("kty") == "oct" or (alg is not None and alg not in algorithms):
            continue  # a shared secret is never a verification key here
        try:
            key = jwt.PyJWK(entry, algorithm=alg or _default_alg(entry))
        except jwt.PyJWTError:
            continue
        found[str(entry.get("kid", ""))] = key
    if not found:
        raise ValueError("the JWKS holds no usable signing key")
    return found


def _default_alg(entry: Mapping[str, Any]) -> str:
    return {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}.get(str(entry.get("kty")), "RS256")


def pkce_pair() -> tuple[str, str]:
    """A fresh code verifier and its S256 challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _names(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


def grants(claims: Mapping[str, Any], client_id: str) -> set[str]:
    """Every scope and role a token carries: `scope`/`scp`, and Keycloak's realm and client
    roles (`realm_access.roles`, `resource_access.<client>.roles`)."""
    found = _names(claims.get("scope")) | _names(claims.get("scp"))
    realm = claims.get("realm_access")
    if isinstance(realm, dict):
        found |= _names(realm.get("roles"))
    resources = claims.get("resource_access")
    if isinstance(resources, dict) and isinstance(resources.get(client_id), dict):
        found |= _names(resources[client_id].get("roles"))
    return found


@dataclass
class Provider:
    """One OpenID Connect provider and this service's client at it."""

    client: ClientSecrets
    admin_scope: str
    username_claim: str
    min_refresh_seconds: float
    health: Health
    session: aiohttp.ClientSession | None = None
    metadata: Metadata | None = None
    _keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    _verified: dict[str, tuple[Identity, str]] = field(default_factory=dict)  # token: who, kid
    _fetched_at: float = float("-inf")
    _fetching: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def client_secret(self) -> Secret:
        return Secret(self.client.client_secret)

    @property
    def redirect_uri(self) -> str:
        """Where the provider sends the browser back: the first registered redirect URI."""
        return self.client.redirect_uris[0]

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def _get_json(self, url: str, what: str) -> Any:
        try:
            async with self._session().get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise ProviderUnavailable(f"{what} at {url} answered HTTP {response.status}")
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ProviderUnavailable(f"cannot fetch {what} from {url}: {_why(err)}") from None
        except ValueError:
            raise ProviderUnavailable(f"{what} at {url} is not JSON") from None

    async def load(self) -> None:
        """Read the discovery document and the keys now; `ProviderUnavailable` if it fails."""
        url = self.client.server_metadata_url
        try:
            metadata = Metadata.parse(await self._get_json(url, "the discovery document"))
            keys = _keys(await self._get_json(metadata.jwks_uri, "the JWKS"), metadata.algorithms)
        except ValueError as err:
            raise ProviderUnavailable(f"{err} ({url})") from None
        self.metadata, self._keys, self._fetched_at = metadata, keys, time.monotonic()
        # A key the provider no longer publishes ends the tokens it signed at once.
        self._verified = {t: seen for t, seen in self._verified.items() if seen[1] in keys}
        log_event(log, "oidc_keys_loaded", issuer=metadata.issuer, kids=sorted(keys))

    async def _require_metadata(self) -> Metadata:
        if self.metadata is None:
            async with self._fetching:
                if self.metadata is None:
                    await self.load()
        assert self.metadata is not None
        return self.metadata

    async def keep_keys(self) -> None:
        """Supervised: load the keys until it works (not ready meanwhile), then keep them
        fresh; a failed refresh keeps the keys already held and is only logged."""
        wait = KEYS_RETRY_SECONDS[0]
        while True:
            try:
                async with self._fetching:
                    await self.load()
            except ProviderUnavailable as err:
                if self.metadata is None:
                    self.health.down(KEYS_TASK, f"cannot load the provider's signing keys: {err}")
                log_event(log, "oidc_keys_failed", level=logging.WARNING, reason=str(err))
                await asyncio.sleep(wait)
                wait = min(wait * 2, KEYS_RETRY_SECONDS[1])
                continue
            self.health.up(KEYS_TASK)
            wait = KEYS_RETRY_SECONDS[0]
            await asyncio.sleep(KEYS_REFRESH_SECONDS)

    async def _key(self, kid: str) -> jwt.PyJWK:
        """The key `kid`, refetching the JWKS once when it is unknown and allowed by the rate
        limit (concurrent requests share one fetch)."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._fetching:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._fetched_at >= self.min_refresh_seconds:
                try:
                    await self.load()
                except ProviderUnavailable as err:
                    log_event(log, "oidc_keys_failed", level=logging.WARNING, reason=str(err))
                    self._fetched_at = time.monotonic()  # a down provider is asked no faster
                key = self._keys.get(kid)
        if key is None:
            raise TokenRefused("signed with a key the provider does not publish")
        return key

    async def verify(self, token: str, now: float) -> Identity:
        """Whom the provider's access token `token` names; `TokenRefused` saying why if not.

        A token verified before only has its expiry checked again (as `TokenVerifier` does
        for local tokens): the signature check is most of the cost of a request.
        """
        seen = self._verified.get(token)
        if seen is not None:
            if now < seen[0].expires + LEEWAY_SECONDS:  # as PyJWT decides expiry
                return seen[0]
            del self._verified[token]
            raise TokenRefused("ExpiredSignatureError")
        identity, kid = await self._check(token)
        if len(self._verified) >= REMEMBERED_TOKENS:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (identity, kid)
        return identity

    async def _check(self, token: str) -> tuple[Identity, str]:
        """The full check of a token not seen before; its identity and signing key's kid."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRefused("longer than any access token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused("not a JSON Web Token") from None
        metadata = self.metadata
        if metadata is None:
            raise TokenRefused("the provider's keys are not loaded yet")
        algorithm = header.get("alg")
        if algorithm not in metadata.algorithms:
            raise TokenRefused(f"algorithm {str(algorithm)[:20]!r} is not accepted")
        kid = str(header.get("kid", ""))
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=metadata.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as err:
            raise TokenRefused(type(err).__name__) from None
        return self._identity(claims), kid

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        client_id = self.client.client_id
        audience = claims.get("aud")  # one StringOrURI or a list of them (RFC 7519 4.1.3)
        audiences = {audience} if isinstance(audience, str) else _names(audience)
        party = claims.get("azp")
        if party is not None and party != client_id:
            raise TokenRefused("issued to another client (azp)")
        if client_id not in audiences and party != client_id:
            raise TokenRefused("not meant for this service (aud)")
        if claims.get("typ", "Bearer") != "Bearer":
            raise TokenRefused("not an access token (typ)")
        name = claims.get(self.username_claim)
        if not isinstance(name, str) or not name:
            raise TokenRefused(f"no {self.username_claim} claim naming the user")
        admin = self.admin_scope in grants(claims, client_id)
        return Identity(name=name, is_admin=admin, expires=float(claims["exp"]))

    async def authorization_url(self, state: str, challenge: str) -> str:
        """Where `/login` sends the browser: the provider's authorization endpoint."""
        metadata = await self._require_metadata()
        query = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(dict.fromkeys((*BASE_SCOPES, self.admin_scope))),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        separator = "&" if urlsplit(metadata.authorization_endpoint).query else "?"
        return f"{metadata.authorization_endpoint}{separator}{urlencode(query)}"

    async def exchange_code(self, code: str, verifier: str) -> dict[str, Any]:
        """The provider's tokens for an authorization code (RFC 6749 4.1.3, RFC 7636 4.5)."""
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            }
        )

    async def refresh(self, refresh_token: str, scope: str | None) -> dict[str, Any]:
        """New tokens for a refresh token (RFC 6749 6)."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scope:
            form["scope"] = scope
        return await self._token_request(form)

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        metadata = await self._require_metadata()
        url = metadata.token_endpoint
        auth = aiohttp.BasicAuth(self.client.client_id, self.client.client_secret)
        try:
            async with self._session().post(
                url, data=form, auth=auth, allow_redirects=False
            ) as response:
                status = response.status
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ProviderUnavailable(
                f"cannot reach the token endpoint {url}: {_why(err)}"
            ) from None
        except ValueError:
            raise ProviderUnavailable(f"the token endpoint {url} did not answer JSON") from None
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"the token endpoint {url} did not answer a JSON object")
        if status == 200 and isinstance(document.get("access_token"), str):
            return document
        error = document.get("error")
        if 400 <= status < 500 and isinstance(error, str):
            raise ProviderRefused(f"the provider refused the request ({error[:40]})", error)
        raise ProviderUnavailable(f"the token endpoint {url} answered HTTP {status}")


def _why(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return f"no answer within {HTTP_TIMEOUT.total:g} s"
    if isinstance(err, aiohttp.ClientConnectorError):
        return "nothing answers there"
    return type(err).__name__
