"""The pure parts of the user commands: reading `GET /users` and drawing the table."""

from __future__ import annotations

import pytest

from ogdc_hooks.cli.client import ApiError
from ogdc_hooks.cli.users import UserRow, format_table, parse_users


def test_parse_users_reads_the_api_shape() -> None:
    document = {
        "users": [
            {"name": "admin", "github_login": None, "is_admin": True, "active": True},
            {"name": "bob", "github_login": "Bob-GH", "is_admin": False, "active": False},
        ]
    }
    assert parse_users(document) == [
        UserRow("admin", None, admin=True, active=True),
        UserRow("bob", "Bob-GH", admin=False, active=False),
    ]


@pytest.mark.parametrize("document", [None, [], {"users": {}}, {"users": [{"login": "x"}]}])
def test_parse_users_refuses_other_shapes(document: object) -> None:
    with pytest.raises(ApiError, match="GET /users"):
        parse_users(document)


def test_table_pads_columns_and_marks_missing_logins() -> None:
    table = format_table(
        [UserRow("admin", None, admin=True, active=True), UserRow("bo", "b-gh", False, False)]
    )
    assert table.splitlines() == [
        "NAME   GITHUB LOGIN  ADMIN  ACTIVE",
        "admin  -             yes    yes",
        "bo     b-gh          no     no",
    ]


def test_parse_users_reads_forge_logins_by_host() -> None:
    document = {
        "users": [
            {
                "name": "cy",
                "github_login": "cy",
                "forge_logins": {"github.com": "cy", "codeberg.org": "Cy-C"},
                "is_admin": False,
                "active": True,
            }
        ]
    }
    [row] = parse_users(document)
    assert row.forge_logins == (("codeberg.org", "Cy-C"), ("github.com", "cy"))


def test_table_shows_forge_logins_only_when_someone_has_one_beyond_github() -> None:
    github_only = UserRow("bo", "b-gh", False, True, (("github.com", "b-gh"),))
    assert format_table([github_only]).splitlines()[0].split()[-1] == "ACTIVE"
    other = UserRow("cy", None, False, True, (("codeberg.org", "cy"), ("forge.lab", "c")))
    assert format_table([github_only, other]).splitlines() == [
        "NAME  GITHUB LOGIN  ADMIN  ACTIVE  FORGE LOGINS",
        "bo    b-gh          no     yes     github.com:b-gh",
        "cy    -             no     yes     codeberg.org:cy,forge.lab:c",
    ]
