"""User management against the real service: who may do what, and every bad input."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import Api

PASSWORD = "a good long password"


def _name() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def _login() -> str:
    return f"gh-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def admin(api: Api) -> str:
    return api.admin_token()


@pytest.fixture
def member(api: Api, admin: str) -> tuple[str, str]:
    """A user who is not an admin, and their token."""
    name = _name()
    assert api.create_user(admin, name, PASSWORD).status_code == 201
    return name, api.login(name, PASSWORD)


def _users(api: Api, admin: str) -> dict[str, dict[str, object]]:
    response = api.call("GET", "/users", admin)
    assert response.status_code == 200
    return {user["name"]: user for user in response.json()["users"]}


def test_the_admin_creates_a_user_who_can_then_log_in(api: Api, admin: str) -> None:
    name, login = _name(), _login()
    response = api.create_user(admin, name, PASSWORD, github_login=login)
    assert response.status_code == 201
    assert response.json() == {"message": f'User with username "{name}" created.'}
    listed = _users(api, admin)[name]
    assert listed["github_login"] == login
    assert listed["is_admin"] is False
    assert listed["active"] is True
    assert "password" not in str(listed)
    token = api.login(name, PASSWORD)
    assert api.call("GET", "/user", token).json() == {"current_user": name}


def test_create_user_takes_json_too(api: Api, admin: str) -> None:
    name = _name()
    response = api.call(
        "POST", "/create_user", admin, json={"username": name, "password": PASSWORD}
    )
    assert response.status_code == 201
    assert _users(api, admin)[name]["github_login"] is None


def test_an_empty_github_login_in_a_form_means_none(api: Api, admin: str) -> None:
    name = _name()
    assert api.create_user(admin, name, PASSWORD, github_login="").status_code == 201
    assert _users(api, admin)[name]["github_login"] is None


def test_a_taken_name_is_409(api: Api, admin: str, member: tuple[str, str]) -> None:
    response = api.create_user(admin, member[0], PASSWORD)
    assert response.status_code == 409
    assert member[0] in response.json()["detail"]
    assert api.create_user(admin, "admin", PASSWORD).status_code == 409


def test_a_taken_github_login_is_409_whatever_its_case(api: Api, admin: str) -> None:
    login = _login()
    assert api.create_user(admin, _name(), PASSWORD, github_login=login).status_code == 201
    response = api.create_user(admin, _name(), PASSWORD, github_login=login.upper())
    assert response.status_code == 409
    assert "github_login" in response.json()["detail"]


def test_a_member_cannot_manage_users(api: Api, member: tuple[str, str]) -> None:
    name, token = member
    forbidden = [
        api.create_user(token, _name(), PASSWORD),
        api.call("GET", "/users", token),
        api.call("PATCH", f"/users/{name}", token, json={"github_login": "x"}),
        api.call("DELETE", "/users/admin", token),
    ]
    for response in forbidden:
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": "This needs an admin's token."}
    assert api.call("GET", "/user", token).status_code == 200


def test_managing_users_without_a_token_is_401(api: Api) -> None:
    for method, path in (
        ("POST", "/create_user"),
        ("GET", "/users"),
        ("PATCH", "/users/admin"),
        ("DELETE", "/users/admin"),
    ):
        response = api.call(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "ok-name"}, "password"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "x" * 151, "password": PASSWORD}, "username"),
        ({"username": "has space", "password": PASSWORD}, "username"),
        ({"username": "..", "password": PASSWORD}, "username"),
        ({"username": "a/b", "password": PASSWORD}, "username"),
        ({"username": "ok-name", "password": "short"}, "password"),
        ({"username": "ok-name", "password": "p" * 1025}, "password"),
        ({"username": "ok-name", "password": PASSWORD, "github_login": "-bad"}, "github_login"),
        ({"username": "ok-name", "password": PASSWORD, "github_login": "bad-"}, "github_login"),
        ({"username": "ok-name", "password": PASSWORD, "github_login": "a--b"}, "github_login"),
        ({"username": "ok-name", "password": PASSWORD, "github_login": "a" * 40}, "github_login"),
        ({"username": "ok-name", "password": PASSWORD, "github_login": "a_b"}, "github_login"),
        ({"username": "ok-name", "password": PASSWORD, "is_admin": "true"}, "is_admin"),
    ],
)
def test_an_invalid_new_user_is_422_naming_the_field(
    api: Api, admin: str, form: dict[str, str], field: str
) -> None:
    response = api.call("POST", "/create_user", admin, data=form)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}:")
    assert PASSWORD not in response.text
    for library_text in ("pattern", "^", "String should", "Extra inputs", "Input should"):
        assert library_text not in detail, detail


def test_a_rule_a_field_breaks_reads_as_words(api: Api, admin: str) -> None:
    cases = [
        ({"username": "ok-name", "password": "short"}, "password: must have at least 8 characters"),
        (
            {"username": "ok-name", "password": PASSWORD, "github_login": "a_b"},
            "github_login: must be a GitHub login: letters, digits and single hyphens, "
            "not at either end",
        ),
        ({"password": PASSWORD}, "username: is required"),
        (
            {"username": "ok-name", "password": PASSWORD, "is_admin": "true"},
            "is_admin: is not a field this route takes",
        ),
    ]
    for form, detail in cases:
        response = api.call("POST", "/create_user", admin, data=form)
        assert (response.status_code, response.json()["detail"]) == (422, detail)


def test_the_longest_valid_names_are_accepted(api: Api, admin: str) -> None:
    name = "n" + uuid.uuid4().hex + "x" * (150 - 33)
    login = "L" + uuid.uuid4().hex[:10] + "-" + "z" * 27
    assert len(name) == 150 and len(login) == 39
    assert api.create_user(admin, name, "p" * 1024, github_login=login).status_code == 201
    assert api.login(name, "p" * 1024)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"username": "x", ', 400),
        ("[1, 2]", 422),
        ('"just a string"', 422),
    ],
)
def test_a_malformed_json_body_is_4xx(api: Api, admin: str, body: str, status: int) -> None:
    response = api.call(
        "POST",
        "/create_user",
        admin,
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status
    assert response.json()["detail"]


def test_another_media_type_is_415(api: Api, admin: str) -> None:
    response = api.call(
        "POST", "/create_user", admin, data=b"<user/>", headers={"Content-Type": "text/xml"}
    )
    assert response.status_code == 415


def test_a_repeated_or_file_field_is_422(api: Api, admin: str) -> None:
    repeated = api.call(
        "POST",
        "/create_user",
        admin,
        data=[("username", "a1"), ("username", "b1"), ("password", PASSWORD)],
    )
    assert repeated.status_code == 422
    assert repeated.json()["detail"] == "username: given more than once"


def test_patch_changes_password_login_and_active(
    api: Api, admin: str, member: tuple[str, str]
) -> None:
    name, _ = member
    login = _login()
    response = api.call(
        "PATCH", f"/users/{name}", admin, json={"password": "new password!", "github_login": login}
    )
    assert response.status_code == 200
    assert response.json()["github_login"] == login
    assert api.token(name, PASSWORD).status_code == 401
    api.login(name, "new password!")
    cleared = api.call("PATCH", f"/users/{name}", admin, json={"github_login": None})
    assert cleared.json()["github_login"] is None
    disabled = api.call("PATCH", f"/users/{name}", admin, data={"active": "false"})
    assert disabled.status_code == 200
    assert disabled.json()["active"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"password": "short"}, "password"),
        ({"password": None}, "body"),
        ({"active": None}, "body"),
        ({"active": "maybe"}, "active"),
        ({"github_login": "no_underscores"}, "github_login"),
        ({"is_admin": True}, "is_admin"),
    ],
)
def test_an_invalid_change_is_422(
    api: Api, admin: str, member: tuple[str, str], body: dict[str, object], field: str
) -> None:
    response = api.call("PATCH", f"/users/{member[0]}", admin, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}:")


def test_a_github_login_taken_by_another_user_is_409(
    api: Api, admin: str, member: tuple[str, str]
) -> None:
    login = _login()
    assert api.create_user(admin, _name(), PASSWORD, github_login=login).status_code == 201
    response = api.call("PATCH", f"/users/{member[0]}", admin, json={"github_login": login.upper()})
    assert response.status_code == 409


def test_the_admin_cannot_lock_itself_out(api: Api, admin: str) -> None:
    assert api.call("PATCH", "/users/admin", admin, json={"active": False}).status_code == 409
    assert api.call("DELETE", "/users/admin", admin).status_code == 409
    password = api.call("PATCH", "/users/admin", admin, json={"password": "another one!"})
    assert password.status_code == 409
    assert "OGDC_ADMIN_PASSWORD" in password.json()["detail"]
    assert api.call("GET", "/user", admin).status_code == 200


def test_changing_or_deleting_a_missing_user_is_404(api: Api, admin: str) -> None:
    missing = _name()
    patched = api.call("PATCH", f"/users/{missing}", admin, json={"active": True})
    assert patched.status_code == 404
    assert api.call("DELETE", f"/users/{missing}", admin).status_code == 404


def test_delete_removes_the_user(api: Api, admin: str, member: tuple[str, str]) -> None:
    name, _ = member
    response = api.call("DELETE", f"/users/{name}", admin)
    assert response.status_code == 200
    assert name not in _users(api, admin)
    assert api.call("DELETE", f"/users/{name}", admin).status_code == 404


def test_unknown_routes_and_methods_are_json(api: Api, admin: str) -> None:
    missing = api.call("GET", "/no/such/route")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    wrong_method = api.call("PUT", "/users", admin)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["detail"]
    assert "GET" in wrong_method.headers["Allow"]


def test_an_oversized_body_is_413(api: Api, admin: str) -> None:
    response = api.call(
        "POST", "/create_user", admin, data={"username": "big", "password": "p" * (2 * 1024**2)}
    )
    assert response.status_code == 413
    assert response.json()["detail"]
