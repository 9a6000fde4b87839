"""Tokens against the real service: what is accepted, and every way a token is refused."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ogdc_hooks.auth.tokens import InvalidToken, Subject, TokenVerifier, issue_token
from tests.api.conftest import ADMIN_PASSWORD, JWT_KEY, Api

PASSWORD = "correct horse battery"


def _name() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, object], header: dict[str, object]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _in(minutes: int) -> int:
    return int((datetime.now(UTC) + timedelta(minutes=minutes)).timestamp())


def _assert_unauthorized(api: Api, token: str | None, header: str | None = None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = api.call("GET", "/user", token, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "Could not validate credentials."}


@pytest.fixture(scope="module")
def admin(api: Api) -> str:
    return api.admin_token()


@pytest.fixture
def user(api: Api, admin: str) -> str:
    name = _name()
    assert api.create_user(admin, name, PASSWORD).status_code == 201
    return name


def test_password_login_gives_a_30_minute_hs256_token(api: Api, user: str) -> None:
    before = datetime.now(UTC)
    response = api.token(user, PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "utc_expiration"}
    assert body["token_type"] == "Bearer"
    expiry = datetime.fromisoformat(body["utc_expiration"])
    assert timedelta(minutes=29) < expiry - before <= timedelta(minutes=30, seconds=5)
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    claims = jwt.decode(body["access_token"], JWT_KEY, algorithms=["HS256"])
    assert claims["sub"] == user
    assert claims["exp"] == int(expiry.timestamp())
    assert api.call("GET", "/user", body["access_token"]).json() == {"current_user": user}


def test_grant_type_password_is_accepted_and_other_grants_are_not(api: Api, user: str) -> None:
    form = {"username": user, "password": PASSWORD}
    ok = api.call("POST", "/token", data={**form, "grant_type": "password", "client_id": "x"})
    assert ok.status_code == 200
    other = api.call("POST", "/token", data={**form, "grant_type": "client_credentials"})
    assert other.status_code == 422
    assert other.json()["detail"].startswith("grant_type:")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "someone"}, "password"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "someone", "password": "x" * 1025}, "password"),
    ],
)
def test_a_malformed_login_form_is_422_naming_the_field(
    api: Api, data: dict[str, str], field: str
) -> None:
    response = api.call("POST", "/token", data=data)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}:")
    assert "x" * 20 not in response.text  # the value itself is never echoed


def test_a_login_as_json_is_415(api: Api, user: str) -> None:
    response = api.call("POST", "/token", json={"username": user, "password": PASSWORD})
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["detail"]


def test_wrong_password_and_unknown_user_get_the_same_401(api: Api, user: str) -> None:
    wrong = api.token(user, "not the password")
    unknown = api.token(_name(), PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert wrong.json() == unknown.json() == {"detail": "Incorrect username or password."}


def test_missing_or_malformed_authorization_is_401(api: Api) -> None:
    _assert_unauthorized(api, None)
    _assert_unauthorized(api, None, header="Basic YWRtaW46YWRtaW4=")
    _assert_unauthorized(api, None, header="Bearer")
    _assert_unauthorized(api, None, header="Bearer    ")
    _assert_unauthorized(api, "not-a-jwt")
    _assert_unauthorized(api, "a.b.c")
    _assert_unauthorized(api, "eyJhbGciOiJIUzI1NiJ9.%%%%.abc")


def test_an_expired_token_is_401(api: Api, user: str) -> None:
    expired = issue_token(Subject(user, 1, 0), JWT_KEY, datetime.now(UTC) - timedelta(minutes=31))
    _assert_unauthorized(api, expired.token)


def test_a_tampered_token_is_401(api: Api, user: str) -> None:
    header, _, signature = api.login(user, PASSWORD).split(".")
    forged_claims = _b64(json.dumps({"sub": "admin", "exp": _in(30)}).encode())
    _assert_unauthorized(api, f"{header}.{forged_claims}.{signature}")


def test_alg_none_is_401(api: Api) -> None:
    claims = {"sub": "admin", "exp": _in(30)}
    _assert_unauthorized(api, _unsigned(claims, {"alg": "none", "typ": "JWT"}))
    _assert_unauthorized(api, _unsigned(claims, {"alg": "None", "typ": "JWT"}))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_another_key_or_algorithm_is_401(api: Api, user: str) -> None:
    claims = {"sub": user, "exp": _in(30)}
    _assert_unauthorized(api, jwt.encode(claims, "another-key-" + "x" * 40, algorithm="HS256"))
    _assert_unauthorized(api, jwt.encode(claims, JWT_KEY, algorithm="HS512"))
    _assert_unauthorized(api, jwt.encode(claims, JWT_KEY + "x" * 30, algorithm="HS384"))
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _assert_unauthorized(api, jwt.encode(claims, private_key, algorithm="RS256"))


def test_a_token_without_subject_or_expiry_is_401(api: Api, user: str) -> None:
    _assert_unauthorized(api, jwt.encode({"sub": user}, JWT_KEY, algorithm="HS256"))
    _assert_unauthorized(api, jwt.encode({"exp": _in(30)}, JWT_KEY, algorithm="HS256"))
    _assert_unauthorized(api, jwt.encode({"sub": "", "exp": _in(30)}, JWT_KEY, algorithm="HS256"))


def test_a_token_of_a_deleted_user_is_401(api: Api, admin: str, user: str) -> None:
    token = api.login(user, PASSWORD)
    assert api.call("DELETE", f"/users/{user}", admin).status_code == 200
    _assert_unauthorized(api, token)
    assert api.token(user, PASSWORD).status_code == 401


def test_a_token_dies_with_its_user_even_when_the_name_is_created_again(
    api: Api, admin: str, user: str
) -> None:
    token = api.login(user, PASSWORD)
    assert api.call("DELETE", f"/users/{user}", admin).status_code == 200
    assert api.create_user(admin, user, PASSWORD).status_code == 201
    _assert_unauthorized(api, token)
    fresh = api.login(user, PASSWORD)
    assert api.call("GET", "/user", fresh).json() == {"current_user": user}


def test_a_password_change_ends_the_tokens_issued_before(api: Api, admin: str, user: str) -> None:
    token = api.login(user, PASSWORD)
    changed = api.call("PATCH", f"/users/{user}", admin, json={"password": "another password"})
    assert changed.status_code == 200, changed.text
    _assert_unauthorized(api, token)
    fresh = api.login(user, "another password")
    assert api.call("GET", "/user", fresh).json() == {"current_user": user}
    # Other changes leave tokens alone.
    assert (
        api.call("PATCH", f"/users/{user}", admin, json={"github_login": None}).status_code == 200
    )
    assert api.call("GET", "/user", fresh).status_code == 200


def test_a_token_without_a_user_id_or_version_is_401(api: Api, user: str) -> None:
    _assert_unauthorized(api, jwt.encode({"sub": user, "exp": _in(30)}, JWT_KEY, algorithm="HS256"))
    claims = {"sub": user, "uid": "1", "ver": 0, "exp": _in(30)}
    _assert_unauthorized(api, jwt.encode(claims, JWT_KEY, algorithm="HS256"))


def test_a_token_of_a_disabled_user_is_401_until_enabled(api: Api, admin: str, user: str) -> None:
    token = api.login(user, PASSWORD)
    assert api.call("PATCH", f"/users/{user}", admin, json={"active": False}).status_code == 200
    _assert_unauthorized(api, token)
    assert api.token(user, PASSWORD).status_code == 401
    assert api.call("PATCH", f"/users/{user}", admin, json={"active": True}).status_code == 200
    assert api.call("GET", "/user", token).json() == {"current_user": user}


def test_a_token_for_a_name_that_never_existed_is_401(api: Api) -> None:
    _assert_unauthorized(api, issue_token(Subject(_name(), 1, 0), JWT_KEY, datetime.now(UTC)).token)


def test_public_routes_need_no_token_and_ignore_a_bad_one(api: Api) -> None:
    for path in ("/version", "/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert api.call("GET", path).status_code == 200, path
        assert api.call("GET", path, "garbage").status_code == 200, path


def test_the_admin_password_logs_in_as_admin(api: Api) -> None:
    token = api.login("admin", ADMIN_PASSWORD)
    assert api.call("GET", "/user", token).json() == {"current_user": "admin"}


def test_a_remembered_token_still_expires() -> None:
    now = datetime.now(UTC)
    alice = Subject("alice", 7, 2)
    issued = issue_token(alice, JWT_KEY, now)
    verifier = TokenVerifier(JWT_KEY)
    assert verifier.subject(issued.token, now.timestamp()) == alice
    assert verifier.subject(issued.token, now.timestamp() + 60) == alice  # remembered
    with pytest.raises(InvalidToken, match="Expired"):
        verifier.subject(issued.token, issued.expires_at.timestamp())
    assert issued.token not in verifier._verified


def test_the_verifier_remembers_a_bounded_number_of_valid_tokens_only() -> None:
    now = datetime.now(UTC)
    verifier = TokenVerifier(JWT_KEY, max_entries=2)
    tokens = [issue_token(Subject(f"user{n}", n, 0), JWT_KEY, now).token for n in range(3)]
    for token in tokens:
        verifier.subject(token, now.timestamp())
    assert len(verifier._verified) == 2
    with pytest.raises(InvalidToken):
        verifier.subject(tokens[0][:-2] + "xx", now.timestamp())
    assert len(verifier._verified) == 2
