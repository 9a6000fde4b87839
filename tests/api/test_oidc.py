"""Single sign-on against a real OpenID Connect provider and the real service over HTTP.

The provider is oidc-provider-mock in a thread (tests/support/oidc_provider.py):
it issues RS256 JWT access tokens, requires PKCE and can rotate its key. The
service runs as a subprocess on its own database, configured as ogdc-runner
0.4.2 is: `OIDC_CLIENT_SECRETS_FILE` naming the provider's discovery document.
The registered redirect URI is the service's public address in production; here
the test's "browser" carries the provider's redirect to the service itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.api.conftest import Api
from tests.support.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    Provider,
    client_secrets,
    running_provider,
    sign_in_at,
)
from tests.support.postgres import PostgresServer
from tests.support.service import DEFAULT_SECRETS, LISTENING, Service
from tests.support.waiting import wait_for

REFUSED = {"detail": "Could not validate credentials."}


@pytest.fixture(scope="module")
def sso(
    module_db_env: dict[str, str], provider: Provider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    path = client_secrets(tmp_path_factory.mktemp("oidc"), provider.url)
    env = {
        **module_db_env,
        "OIDC_CLIENT_SECRETS_FILE": str(path),
        "OIDC_JWKS_MIN_REFRESH_SECONDS": "0",  # so that the rotation test need not wait
    }
    with Service(env) as service:
        yield Api(service)


def _tokens(api: Api, provider: Provider, sub: str) -> dict[str, str]:
    response = sign_in_at(api.url, provider, sub)
    assert response.status_code == 200, response.text
    return dict(response.json()["token"])


def _refused(api: Api, token: str) -> None:
    response = api.call("GET", "/user", token)
    assert response.status_code == 401, response.text
    assert response.json() == REFUSED
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_code_flow_with_pkce_signs_in_and_creates_the_user(sso: Api, provider: Provider) -> None:
    sub, name = provider.new_user()
    browser = requests.Session()
    login = browser.get(f"{sso.url}/login", allow_redirects=False, timeout=10)
    assert login.status_code == 302
    cookie = login.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/authorize", "Max-Age=600"):
        assert attribute in cookie, cookie
    assert "Secure" not in cookie  # the redirect URI is http here; https makes it Secure
    query = parse_qs(urlsplit(login.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert "ogdc:admin" in query["scope"][0].split()
    back = provider.sign_in(login.headers["Location"], sub)
    answer = browser.get(f"{sso.url}/authorize?{urlsplit(back).query}", timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["message"] == "Success" and body["user"] == name
    assert body["token"]["refresh_token"]
    # The provider checked the verifier against the challenge it was sent.
    assert query["code_challenge"][0] in {c for c, _ in provider.challenges.values()}
    # The login cookie is spent.
    assert not browser.cookies.get("ogdc_hooks_login")

    token = body["token"]["access_token"]
    assert sso.call("GET", "/user", token).json() == {"current_user": name}
    users = sso.call("GET", "/users", sso.admin_token()).json()["users"]
    assert name in [user["name"] for user in users]
    # Without the admin role, admin routes are closed; the local login has no password.
    assert sso.call("GET", "/users", token).status_code == 403
    assert sso.token(name, "any password at all").status_code == 401
    # An admin can give the user a GitHub login, so its pushes and runs attach to it.
    given = sso.call(
        "PATCH", f"/users/{name}", sso.admin_token(), json={"github_login": f"gh-{name}"}
    )
    assert given.status_code == 200, given.text
    log = sso.service.log_text()
    assert token not in log and body["token"]["refresh_token"] not in log
    assert CLIENT_SECRET not in log


def test_the_admin_role_makes_an_admin(sso: Api, provider: Provider) -> None:
    sub, _ = provider.new_user(admin=True)
    token = _tokens(sso, provider, sub)["access_token"]
    assert sso.call("GET", "/users", token).status_code == 200


def test_a_disabled_user_is_refused_though_the_provider_signs_it_in(
    sso: Api, provider: Provider
) -> None:
    sub, name = provider.new_user()
    token = _tokens(sso, provider, sub)["access_token"]
    changed = sso.call("PATCH", f"/users/{name}", sso.admin_token(), json={"active": False})
    assert changed.status_code == 200, changed.text
    _refused(sso, token)


def test_a_state_that_is_not_this_browsers_is_400(sso: Api, provider: Provider) -> None:
    sub, _ = provider.new_user()
    browser = requests.Session()
    login = browser.get(f"{sso.url}/login", allow_redirects=False, timeout=10)
    back = parse_qs(urlsplit(provider.sign_in(login.headers["Location"], sub)).query)
    forged = browser.get(
        f"{sso.url}/authorize", params={"code": back["code"][0], "state": "other"}, timeout=10
    )
    assert forged.status_code == 400
    assert "does not match" in forged.json()["detail"]
    cookieless = requests.get(
        f"{sso.url}/authorize",
        params={"code": back["code"][0], "state": back["state"][0]},
        timeout=10,
    )
    assert cookieless.status_code == 400
    assert "No sign-in is under way" in cookieless.json()["detail"]
    denied = browser.get(f"{sso.url}/authorize", params={"error": "access_denied"}, timeout=10)
    assert denied.status_code == 400
    assert denied.json()["detail"].startswith("The provider did not sign you in (access_denied)")


def test_refresh_gives_a_new_access_token(sso: Api, provider: Provider) -> None:
    sub, name = provider.new_user()
    tokens = _tokens(sso, provider, sub)
    response = sso.call("POST", "/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text
    fresh = response.json()["token"]["access_token"]
    assert fresh != tokens["access_token"]
    assert sso.call("GET", "/user", fresh).json() == {"current_user": name}

    bad = sso.call("POST", "/refresh", json={"refresh_token": "not-a-refresh-token"})
    assert bad.status_code == 401
    assert (
        bad.json()["detail"] == "The refresh token is invalid or expired; sign in again at /login."
    )


def test_a_rotated_key_is_fetched_and_the_old_one_dropped(sso: Api, provider: Provider) -> None:
    sub, name = provider.new_user()
    before = _tokens(sso, provider, sub)["access_token"]
    assert sso.call("GET", "/user", before).status_code == 200
    provider.rotate_key()
    after = _tokens(sso, provider, sub)["access_token"]
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    assert sso.call("GET", "/user", after).json() == {"current_user": name}
    _refused(sso, before)  # its key is no longer published


def test_a_token_of_another_issuer_is_refused(sso: Api) -> None:
    with running_provider() as other:
        sub, _ = other.new_user()
        token = other.tokens(CLIENT_ID, sub, REDIRECT_URI)["access_token"]
    _refused(sso, token)


def test_a_token_for_another_client_is_refused(sso: Api, provider: Provider) -> None:
    sub, _ = provider.new_user()
    token = provider.tokens("another-client", sub, REDIRECT_URI)["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "another-client"
    _refused(sso, token)


def test_an_expired_token_is_refused(
    module_db_env: dict[str, str], tmp_path: Path, sso: Api
) -> None:
    with running_provider(lifetime=-120) as expiring:
        sub, _ = expiring.new_user()
        env = {
            **module_db_env,
            "OIDC_CLIENT_SECRETS_FILE": str(client_secrets(tmp_path, expiring.url)),
        }
        with Service(env) as service:
            api = Api(service)
            token = expiring.tokens(CLIENT_ID, sub, REDIRECT_URI)["access_token"]
            _refused(api, token)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(token: str, header: dict[str, object], key: bytes | None) -> str:
    """The claims of a genuine token under another header, signed with HMAC `key` or unsigned."""
    claims = token.split(".")[1]
    signing_input = f"{_b64(json.dumps(header).encode())}.{claims}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{_b64(signature)}"


def test_alg_none_and_hs256_with_the_public_key_are_refused(sso: Api, provider: Provider) -> None:
    sub, _ = provider.new_user()
    token = _tokens(sso, provider, sub)["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    _refused(sso, _forged(token, {"alg": "none", "typ": "JWT", "kid": kid}, None))
    jwk = requests.get(f"{provider.url}/jwks", timeout=10).json()["keys"][0]
    public_pem = jwt.PyJWK(jwk, algorithm="RS256").key.public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    for key in (public_pem, json.dumps(jwk).encode()):
        _refused(sso, _forged(token, {"alg": "HS256", "typ": "JWT", "kid": kid}, key))
    assert sso.call("GET", "/user", token).status_code == 200  # the genuine one still works


def test_local_users_and_post_token_still_work(sso: Api) -> None:
    assert sso.call("GET", "/user", sso.admin_token()).json() == {"current_user": "admin"}


def _not_ready_for_keys(service: Service) -> tuple[requests.Response] | None:
    """/readyz once the service listens, if it says the keys are missing (in a tuple: a
    503 response is falsy)."""
    found = LISTENING.search(service.log_text())
    if not found:
        return None
    service.base_url = found.group(1)
    response = requests.get(f"{service.url}/readyz", timeout=10)
    return (response,) if "signing keys" in response.text else None


def test_a_provider_that_cannot_be_reached_is_not_ready_and_login_is_503(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    name = postgres.create_database()
    with running_provider() as gone:
        url = gone.url  # nothing listens there once the block is left
    env = {
        **postgres.env(name),
        **DEFAULT_SECRETS,
        "OIDC_CLIENT_SECRETS_FILE": str(client_secrets(tmp_path, url)),
    }
    service = Service(env)
    service.launch()
    try:
        (readiness,) = asyncio.run(
            wait_for(lambda: _not_ready_for_keys(service), within=60, what="/readyz on keys")
        )
        assert readiness.status_code == 503
        assert "cannot load the provider's signing keys" in readiness.json()["detail"]
        login = requests.get(f"{service.url}/login", allow_redirects=False, timeout=30)
        assert login.status_code == 503
        assert (
            login.json()["detail"] == "The sign-in provider cannot be reached; try again shortly."
        )
        assert CLIENT_SECRET not in service.log_text()
    finally:
        service.stop()
        postgres.drop_database(name)


def test_a_missing_client_file_stops_the_start(
    module_db_env: dict[str, str], tmp_path: Path
) -> None:
    absent = tmp_path / "absent.json"
    service = Service({**module_db_env, "OIDC_CLIENT_SECRETS_FILE": str(absent)})
    service.launch()
    assert service.wait() == 2
    assert f"OIDC_CLIENT_SECRETS_FILE: cannot read {absent}" in service.log_text()


def test_unknown_keys_are_fetched_no_more_often_than_the_limit(
    module_db_env: dict[str, str], tmp_path: Path
) -> None:
    with running_provider() as rotating:
        env = {
            **module_db_env,
            "OIDC_CLIENT_SECRETS_FILE": str(client_secrets(tmp_path, rotating.url)),
            "OIDC_JWKS_MIN_REFRESH_SECONDS": "3600",
        }
        with Service(env) as service:
            api = Api(service)
            sub, name = rotating.new_user()
            token = sign_in_at(api.url, rotating, sub).json()["token"]["access_token"]
            assert api.call("GET", "/user", token).json() == {"current_user": name}
            rotating.rotate_key()
            # The keys were fetched at start, less than an hour ago: the new kid is refused
            # rather than making every forged kid a request to the provider.
            _refused(api, rotating.tokens(CLIENT_ID, sub, REDIRECT_URI)["access_token"])
