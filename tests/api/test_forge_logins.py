"""Forge logins through the API: one login a forge host, unique ignoring case on its host,
`github_login` as the login on the configured GitHub (github.com here)."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import Api

PASSWORD = "a good long password"


def _name() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def _login() -> str:
    return f"fl-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def admin(api: Api) -> str:
    return api.admin_token()


def _create(api: Api, admin: str, **fields: object) -> tuple[str, int, dict[str, object]]:
    name = _name()
    response = api.call(
        "POST", "/create_user", admin, json={"username": name, "password": PASSWORD, **fields}
    )
    return name, response.status_code, response.json()


def _user(api: Api, admin: str, name: str) -> dict[str, object]:
    users = api.call("GET", "/users", admin).json()["users"]
    [user] = [user for user in users if user["name"] == name]
    return dict(user)


def _patch(api: Api, admin: str, name: str, body: object) -> tuple[int, dict[str, object]]:
    response = api.call("PATCH", f"/users/{name}", admin, json=body)
    return response.status_code, response.json()


def test_forge_logins_are_stored_shown_and_github_com_is_the_github_login(
    api: Api, admin: str
) -> None:
    github, codeberg = _login(), _login()
    logins = {"github.com": github, "codeberg.org": codeberg}
    name, status, _ = _create(api, admin, forge_logins=logins)
    assert status == 201
    user = _user(api, admin, name)
    assert user["forge_logins"] == logins
    assert user["github_login"] == github


def test_github_login_is_the_forge_login_on_github_com(api: Api, admin: str) -> None:
    login = _login()
    name, status, _ = _create(api, admin, github_login=login)
    assert status == 201
    assert _user(api, admin, name)["forge_logins"] == {"github.com": login}


def test_patch_sets_replaces_and_removes_logins_host_by_host(api: Api, admin: str) -> None:
    first, second, third = _login(), _login(), _login()
    name, _, _ = _create(api, admin, forge_logins={"codeberg.org": first, "forge.lab:3000": second})
    status, user = _patch(api, admin, name, {"forge_logins": {"codeberg.org": third}})
    assert status == 200
    assert user["forge_logins"] == {"codeberg.org": third, "forge.lab:3000": second}
    status, user = _patch(api, admin, name, {"forge_logins": {"forge.lab:3000": None}})
    assert (status, user["forge_logins"]) == (200, {"codeberg.org": third})
    status, user = _patch(api, admin, name, {"github_login": first})
    assert user["forge_logins"] == {"codeberg.org": third, "github.com": first}
    status, user = _patch(api, admin, name, {"forge_logins": {"github.com": None}})
    assert (user["github_login"], user["forge_logins"]) == (None, {"codeberg.org": third})


def test_a_login_taken_on_its_host_is_409_naming_host_and_login(api: Api, admin: str) -> None:
    login = _login()
    _, status, _ = _create(api, admin, forge_logins={"codeberg.org": login})
    assert status == 201
    _, status, body = _create(api, admin, forge_logins={"codeberg.org": login.upper()})
    assert status == 409
    assert f"'{login.upper()}' on codeberg.org" in str(body["detail"])
    other, _, _ = _create(api, admin)
    status, body = _patch(api, admin, other, {"forge_logins": {"codeberg.org": login}})
    assert status == 409
    assert f"'{login}' on codeberg.org" in str(body["detail"])
    assert _user(api, admin, other)["forge_logins"] == {}  # nothing half-done


def test_the_same_login_in_another_case_on_another_host_is_someone_else(
    api: Api, admin: str
) -> None:
    login = _login()
    _, first, _ = _create(api, admin, forge_logins={"codeberg.org": login})
    name, second, _ = _create(api, admin, forge_logins={"forge.lab": login.upper()})
    assert (first, second) == (201, 201)
    assert _user(api, admin, name)["forge_logins"] == {"forge.lab": login.upper()}


def test_a_clash_on_github_com_through_github_login_names_the_field(api: Api, admin: str) -> None:
    login = _login()
    assert _create(api, admin, forge_logins={"github.com": login})[1] == 201
    _, status, body = _create(api, admin, github_login=login.upper())
    assert status == 409
    assert str(body["detail"]).startswith("github_login: ")
    assert "on github.com" in str(body["detail"])


def test_deleting_a_user_frees_its_logins(api: Api, admin: str) -> None:
    login = _login()
    name, _, _ = _create(api, admin, forge_logins={"codeberg.org": login})
    assert api.call("DELETE", f"/users/{name}", admin).status_code == 200
    assert _create(api, admin, forge_logins={"codeberg.org": login})[1] == 201


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"forge_logins": ["codeberg.org", "alice"]}, "must be an object mapping hosts to logins"),
        ({"forge_logins": {"Codeberg.org": "alice"}}, "'Codeberg.org' is not a host name in lower"),
        ({"forge_logins": {"code berg": "alice"}}, "'code berg' is not a host name"),
        ({"forge_logins": {"forge.lab:70000": "alice"}}, "with an optional :port (1-65535)"),
        ({"forge_logins": {"codeberg.org": "a__b"}}, "'a__b' is not a login: letters and digits"),
        ({"forge_logins": {"codeberg.org": "a" * 41}}, "41 characters, more than 40"),
        ({"forge_logins": {"codeberg.org": None}}, "the login on codeberg.org is null"),
        ({"forge_logins": {"codeberg.org": 7}}, "the login on codeberg.org must be text"),
        ({"forge_logins": {"codeberg.org": ""}}, "the login is empty"),
        ({"forge_logins": {"github.com": "a_b"}}, "is not a GitHub login"),
        ({"forge_logins": {f"h{n}.org": "a" for n in range(33)}}, "at most 32 hosts"),
        ({"github_login": "alice", "forge_logins": {"github.com": "bob"}}, "give it once"),
    ],
)
def test_bad_forge_logins_are_422_in_words(
    api: Api, admin: str, fields: dict[str, object], words: str
) -> None:
    _, status, body = _create(api, admin, **fields)
    assert status == 422, body
    detail = str(body["detail"])
    assert detail.startswith(("forge_logins: ", "github_login: ")), detail
    assert words in detail
    assert "^" not in detail and "[" not in detail  # words, not regexes


def test_a_bad_change_is_422_and_null_is_not_a_mapping(api: Api, admin: str) -> None:
    name, _, _ = _create(api, admin)
    status, body = _patch(api, admin, name, {"forge_logins": {"codeberg.org": "-x"}})
    assert (status, str(body["detail"])[:14]) == (422, "forge_logins: ")
    status, body = _patch(api, admin, name, {"forge_logins": None})
    assert status == 422
    assert "must be an object" in str(body["detail"])


def test_a_form_cannot_carry_forge_logins(api: Api, admin: str) -> None:
    response = api.call(
        "POST",
        "/create_user",
        admin,
        data={"username": _name(), "password": PASSWORD, "forge_logins": "codeberg.org:x"},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "forge_logins: can only be given in a JSON body (a form field holds text, not a mapping)"
    )
