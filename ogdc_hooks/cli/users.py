"""`ogdc-hooks create-user` and `ogdc-hooks users list|delete`: user management through the API.

The commands talk to a running service at `OGDC_API_URL` as the admin named
by `OGDC_API_USERNAME`/`OGDC_API_PASSWORD`, exactly like `ogdc-runner
create-user` in ogdc-runner's service design; they never touch the database directly.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ogdc_hooks.cli.client import ApiClient, ApiError, run_api


@dataclass(frozen=True)
class UserRow:
    """One user as `GET /users` describes it."""

    name: str
    github_login: str | None
    admin: bool
    active: bool


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `create-user` and `users`."""
    create = subparsers.add_parser(
        "create-user",
        help="create an API user (as the admin of OGDC_API_USERNAME/OGDC_API_PASSWORD)",
        description="Create a user of the API at OGDC_API_URL. Needs admin credentials in "
        "OGDC_API_USERNAME and OGDC_API_PASSWORD. A GitHub login lets that user's pushes "
        "submit recipes.",
    )
    create.add_argument("username", metavar="USERNAME")
    create.add_argument("password", metavar="PASSWORD")
    create.add_argument(
        "--github-login", metavar="LOGIN", help="the user's GitHub login (matched ignoring case)"
    )
    create.set_defaults(func=_create_user_command)

    users = subparsers.add_parser(
        "users",
        help="list or delete API users (admin)",
        description="Manage the users of the API at OGDC_API_URL as the admin of "
        "OGDC_API_USERNAME/OGDC_API_PASSWORD.",
    )
    actions = users.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show every user as a table")
    listing.set_defaults(func=_list_command)
    delete = actions.add_parser("delete", help="delete a user")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(func=_delete_command)


async def create_user(
    api: ApiClient, username: str, password: str, github_login: str | None = None
) -> str:
    """Create the user; returns the server's confirmation."""
    form = {"username": username, "password": password}
    if github_login is not None:
        form["github_login"] = github_login
    answer = await api.request("POST", "/create_user", form=form)
    return _message(answer, f"User {username!r} created.")


async def list_users(api: ApiClient) -> list[UserRow]:
    """Every user, in the server's order."""
    return parse_users(await api.request("GET", "/users"))


async def delete_user(api: ApiClient, name: str) -> str:
    """Delete the user; returns the server's confirmation."""
    answer = await api.request("DELETE", f"/users/{quote(name, safe='')}")
    return _message(answer, f"User {name!r} deleted.")


def _message(answer: Any, fallback: str) -> str:
    message = answer.get("message") if isinstance(answer, dict) else None
    return message if isinstance(message, str) else fallback


def parse_users(document: Any) -> list[UserRow]:
    """The rows of a `GET /users` answer (`{"users": [...]}`), or an error naming the problem."""
    entries = document.get("users") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ApiError("the API answered GET /users without a list of users")
    rows = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ApiError("the API answered GET /users with an entry that has no name")
        login = entry.get("github_login")
        rows.append(
            UserRow(
                name=entry["name"],
                github_login=login if isinstance(login, str) else None,
                admin=entry.get("is_admin") is True,
                active=entry.get("active") is True,
            )
        )
    return rows


def format_table(rows: list[UserRow]) -> str:
    """A plain-text table with one line per user, columns padded to their widest cell."""
    header = ("NAME", "GITHUB LOGIN", "ADMIN", "ACTIVE")
    cells = [header] + [
        (row.name, row.github_login or "-", _yes_no(row.admin), _yes_no(row.active)) for row in rows
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _create_user_command(args: argparse.Namespace) -> int:
    print(run_api(lambda api: create_user(api, args.username, args.password, args.github_login)))
    return 0


def _list_command(args: argparse.Namespace) -> int:
    print(format_table(run_api(list_users)))
    return 0


def _delete_command(args: argparse.Namespace) -> int:
    print(run_api(lambda api: delete_user(api, args.name)))
    return 0
