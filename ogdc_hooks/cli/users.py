"""`ogdc-hooks create-user` and `ogdc-hooks users list|update|delete`: users through the API.

The commands talk to a running service at `OGDC_API_URL` as the admin named
by `OGDC_API_USERNAME`/`OGDC_API_PASSWORD`, exactly like `ogdc-runner
create-user` in ogdc-runner's service design; they never touch the database directly.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote

from ogdc_hooks.cli.client import ApiClient, ApiError, run_api
from ogdc_hooks.cli.errors import CommandError
from ogdc_hooks.cli.output import add_json_flag, print_json, table


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
        help="list, update or delete API users (admin)",
        description="Manage the users of the API at OGDC_API_URL as the admin of "
        "OGDC_API_USERNAME/OGDC_API_PASSWORD.",
    )
    actions = users.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show every user as a table")
    add_json_flag(listing)
    listing.set_defaults(func=_list_command)
    update = actions.add_parser(
        "update",
        help="change a user's password, GitHub login or whether it may log in",
        description="Change what is given and nothing else. The admin's own password follows "
        "OGDC_ADMIN_PASSWORD and cannot be changed here.",
    )
    update.add_argument("name", metavar="NAME")
    update.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the new password from standard input (one line), never from the command line",
    )
    update.add_argument(
        "--github-login", metavar="LOGIN", help="the user's GitHub login; '' removes it"
    )
    active = update.add_mutually_exclusive_group()
    active.add_argument("--disable", action="store_true", help="refuse its logins and pushes")
    active.add_argument("--enable", action="store_true", help="allow its logins and pushes again")
    add_json_flag(update)
    update.set_defaults(func=_update_command)
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
    """A plain-text table with one line per user."""
    return table(
        ("NAME", "GITHUB LOGIN", "ADMIN", "ACTIVE"),
        [(r.name, r.github_login or "-", _yes_no(r.admin), _yes_no(r.active)) for r in rows],
    )


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _create_user_command(args: argparse.Namespace) -> int:
    print(run_api(lambda api: create_user(api, args.username, args.password, args.github_login)))
    return 0


def _list_command(args: argparse.Namespace) -> int:
    if args.json:
        print_json(run_api(lambda api: api.request("GET", "/users")))
    else:
        print(format_table(run_api(list_users)))
    return 0


def update_fields(args: argparse.Namespace, stdin: TextIO) -> dict[str, Any]:
    """The `PATCH /users/{name}` body for the options given; an error when none is."""
    fields: dict[str, Any] = {}
    if args.password_stdin:
        fields["password"] = stdin.readline().rstrip("\r\n")
    if args.github_login is not None:
        fields["github_login"] = args.github_login or None
    if args.disable or args.enable:
        fields["active"] = args.enable
    if not fields:
        raise CommandError(
            "nothing to change: give --password-stdin, --github-login, --disable or --enable"
        )
    return fields


def _update_command(args: argparse.Namespace) -> int:
    fields = update_fields(args, sys.stdin)
    path = f"/users/{quote(args.name, safe='')}"
    user = run_api(lambda api: api.request("PATCH", path, json_body=fields))
    if args.json:
        print_json(user)
    else:
        print(f"User {args.name!r} updated.")
        print(format_table(parse_users({"users": [user]})))
    return 0


def _delete_command(args: argparse.Namespace) -> int:
    print(run_api(lambda api: delete_user(api, args.name)))
    return 0
