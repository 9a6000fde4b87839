"""A real OpenID Connect provider for the tests, in a thread of the test process.

It is `oidc-provider-mock` (PyPI, MIT, https://github.com/geigerzaehler/oidc-provider-mock):
a Flask app on authlib's authorization server with discovery, a JWKS, the
authorization code and refresh grants, and users set with `PUT /users/<sub>`.
Where it does less than Keycloak (DataONE's provider), it is extended through
authlib's own extension points, not by hand-made tokens or keys:

- access tokens are JWTs (Keycloak's, and RFC 9068's shape: `iss`, `sub`, `aud`,
  `azp`, `scope`, `exp`, `nbf`, `iat`, `jti`, `typ: Bearer`, plus the user's
  claims such as `preferred_username` and `realm_access.roles`), signed with the
  provider's own RSA key: authlib's `OAUTH2_ACCESS_TOKEN_GENERATOR` setting;
- PKCE is required and checked (RFC 7636, S256 only): authlib's `CodeChallenge`
  extension on the mock's authorization code grant, which records each code's
  challenge (the mock's codes have no field for it);
- `POST /test/rotate-key` gives the provider a new signing key (a new `kid`),
  as Keycloak's key rotation does; the JWKS then publishes only the new key.

`lifetime` sets how long access tokens live (negative: already expired).
`client_secrets` writes the `OIDC_CLIENT_SECRETS_FILE` of a service using the
provider, and `sign_in_at` runs a browser's sign-in at such a service.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import flask
import oidc_provider_mock
import requests
import werkzeug.serving
from authlib import jose
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from oidc_provider_mock import _app as mock_app

from ogdc_hooks.auth.oidc import pkce_pair

CLIENT_ID = "ogdc-hooks"
CLIENT_SECRET = "client-secret-that-must-never-be-logged"
# http, so that the login cookie is not Secure: the services under test are plain HTTP.
# In production this is the service's public /authorize; here the test's "browser"
# carries the provider's redirect to the service itself.
REDIRECT_URI = "http://ogdc.example/api/authorize"


def client_secrets(directory: Path, provider_url: str) -> Path:
    """An `OIDC_CLIENT_SECRETS_FILE` as ogdc-runner's chart mounts it, for `provider_url`."""
    path = directory / "client_secrets.json"
    path.write_text(
        json.dumps(
            {
                "server_metadata_url": f"{provider_url}/.well-known/openid-configuration",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [REDIRECT_URI],
            }
        )
    )
    return path


class _StrictCodeChallenge(CodeChallenge):
    """PKCE as a provider that requires it: every authorization request needs an S256
    challenge, and the token request the verifier that matches it."""

    def __init__(self, challenges: dict[str, tuple[str, str]]) -> None:
        super().__init__(required=True)
        self.challenges = challenges

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with S256 is required")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: Any) -> str | None:
        return self.challenges.get(authorization_code.code, (None, None))[0]

    def get_authorization_code_challenge_method(self, authorization_code: Any) -> str | None:
        return self.challenges.get(authorization_code.code, (None, None))[1]


def _code_grant(challenges: dict[str, tuple[str, str]]) -> type[mock_app.AuthorizationCodeGrant]:
    class RecordingCodeGrant(mock_app.AuthorizationCodeGrant):
        """The mock's grant, also keeping each code's PKCE challenge."""

        def save_authorization_code(self, code: str, request: object) -> None:
            super().save_authorization_code(code, request)
            data = request.payload.data  # type: ignore[attr-defined]
            challenges[code] = (data["code_challenge"], data["code_challenge_method"])

    return RecordingCodeGrant


@dataclass
class Provider:
    """One running provider: its URL, and what it saw."""

    url: str
    challenges: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def set_user(self, sub: str, claims: dict[str, object]) -> None:
        response = requests.put(f"{self.url}/users/{sub}", json=claims, timeout=10)
        assert response.status_code == 204, response.text

    def new_user(self, *, admin: bool = False) -> tuple[str, str]:
        """A new user here: its subject and its preferred_username (Keycloak's realm role
        `ogdc:admin` when `admin`)."""
        sub, name = uuid.uuid4().hex, f"sso-{uuid.uuid4().hex[:8]}"
        claims: dict[str, object] = {"preferred_username": name, "email": f"{name}@example.org"}
        if admin:
            claims["realm_access"] = {"roles": ["ogdc:admin", "offline_access"]}
        self.set_user(sub, claims)
        return sub, name

    def rotate_key(self) -> None:
        response = requests.post(f"{self.url}/test/rotate-key", timeout=10)
        assert response.status_code == 204, response.text

    def kids(self) -> list[str]:
        keys = requests.get(f"{self.url}/jwks", timeout=10).json()["keys"]
        return [str(key["kid"]) for key in keys]

    def sign_in(self, authorize_url: str, sub: str) -> str:
        """What a user's browser does at the provider: the redirect back, with code and state."""
        response = requests.post(
            authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10
        )
        assert response.status_code == 302, response.text
        return str(response.headers["Location"])

    def tokens(self, client_id: str, sub: str, redirect_uri: str) -> dict[str, Any]:
        """A whole code flow for `client_id`, as another client of this provider would run it."""
        verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        prepared = requests.Request("GET", f"{self.url}/oauth2/authorize", params=query).prepare()
        back = self.sign_in(str(prepared.url), sub)
        code = parse_qs(urlsplit(back).query)["code"][0]
        response = requests.post(
            f"{self.url}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=(client_id, "any-secret"),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


def sign_in_at(service_url: str, provider: Provider, sub: str) -> requests.Response:
    """The browser's way: the service's /login, the provider's sign-in, the redirect back to
    the service's /authorize; the last answer."""
    browser = requests.Session()
    login = browser.get(f"{service_url}/login", allow_redirects=False, timeout=10)
    assert login.status_code == 302, login.text
    back = provider.sign_in(login.headers["Location"], sub)
    assert back.startswith(REDIRECT_URI + "?")
    return browser.get(f"{service_url}/authorize?{urlsplit(back).query}", timeout=30)


def _access_token_generator(lifetime: int) -> Any:
    """authlib's token generator hook: a JWT access token signed with the provider's key."""

    def generate(client: Any, grant_type: str, user: Any, scope: str) -> str:
        storage = flask.g.oidc_provider_mock_storage
        now = int(time.time())
        claims = {
            **user.claims,
            "iss": flask.request.host_url.rstrip("/"),
            "sub": user.sub,
            "aud": client.get_client_id(),
            "azp": client.get_client_id(),
            "scope": scope or "",
            "typ": "Bearer",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        key = storage.jwk
        header = {"alg": "RS256", "kid": key.as_dict()["kid"], "typ": "at+jwt"}
        return jose.jwt.encode(header, claims, key).decode()

    return generate


def _app(provider: Provider, lifetime: int) -> flask.Flask:
    app = flask.Flask("test-oidc-provider")
    app.secret_key = b"test-oidc-provider"
    app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = _access_token_generator(lifetime)
    oidc_provider_mock.init_app(app)
    grant = _code_grant(provider.challenges)
    extension = _StrictCodeChallenge(provider.challenges)

    @app.before_request
    def require_pkce() -> None:
        server = flask.g._authlib_authorization_server
        if getattr(server, "test_pkce", False):
            return
        for registry in (server._authorization_grants, server._token_grants):
            registry[:] = [
                (grant, [*extensions, extension])
                if cls is mock_app.AuthorizationCodeGrant
                else (cls, extensions)
                for cls, extensions in registry
            ]
        server.test_pkce = True

    @app.post("/test/rotate-key")
    def rotate_key() -> tuple[str, int]:
        flask.g.oidc_provider_mock_storage.jwk = jose.RSAKey.generate_key(is_private=True)
        return "", 204

    return app


@contextmanager
def running_provider(lifetime: int = 300) -> Iterator[Provider]:
    """A provider on a free port of 127.0.0.1 for the life of the block."""
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain HTTP on 127.0.0.1
    provider = Provider(url="")
    server = werkzeug.serving.make_server("127.0.0.1", 0, _app(provider, lifetime), threaded=True)
    provider.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
