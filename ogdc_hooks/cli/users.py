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

from ogdc_hooks.auth.rules import forge_host_problem, split_forge_login
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
    forge_logins: tuple[tuple[str, str], ...] = ()  # (host, login), by host

    @property
    def other_logins(self) -> bool:
        """Whether the user has a login on a forge besides the configured GitHub."""
        return len(self.forge_logins) > (1 if self.github_login else 0)


def _forge_login(text: str) -> tuple[str, str]:
    """argparse's reading of HOST:LOGIN: a usage error in words when it is not one."""
    try:
        return split_forge_login(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _forge_host(text: str) -> str:
    """argparse's reading of a forge HOST (lower-cased): a usage error in words if not one."""
    problem = forge_host_problem(text.lower())
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text.lower()


def _add_forge_login_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--forge-login",
        metavar="HOST:LOGIN",
        type=_forge_login,
        action="append",
        default=[],
        help="the user's login on the forge at HOST, e.g. codeberg.org:alice or "
        "github.com:alice (HOST as in the forge's web address, with :PORT if it has one; "
        "matched ignoring case); repeat for several forges",
    )


def _forge_logins(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The `--forge-login` options as host -> login; a usage error when a host comes twice."""
    logins: dict[str, str] = {}
    for host, login in pairs:
        if host in logins:
            raise CommandError(
                f"--forge-login names {host} twice; a user has one login a host", exit_code=2
            )
        logins[host] = login
    return logins


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `create-user` and `users`."""
    create = subparsers.add_parser(
        "create-user",
        help="create an API user (as the admin of OGDC_API_USERNAME/OGDC_API_PASSWORD)",
        description="Create a user of the API at OGDC_API_URL. Needs admin credentials in "
        "OGDC_API_USERNAME and OGDC_API_PASSWORD. A GitHub login (or a login on another "
        "forge, --forge-login HOST:LOGIN) lets that user's pushes there submit recipes.",
    )
    create.add_argument("username", metavar="USERNAME")
    create.add_argument("password", metavar="PASSWORD")
    create.add_argument(
        "--github-login", metavar="LOGIN", help="the user's GitHub login (matched ignoring case)"
    )
    _add_forge_login_option(create)
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
        help="change a user's password, GitHub or forge logins, or whether it may log in",
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
    _add_forge_login_option(update)
    update.add_argument(
        "--remove-forge-login",
        metavar="HOST",
        type=_forge_host,
        action="append",
        default=[],
        help="remove the user's login on the forge at HOST; repeat for several",
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
    api: ApiClient,
    username: str,
    password: str,
    github_login: str | None = None,
    forge_logins: dict[str, str] | None = None,
) -> str:
    """Create the user; returns the server's confirmation."""
    body: dict[str, Any] = {"username": username, "password": password}
    if github_login is not None:
        body["github_login"] = github_login
    if forge_logins:
        body["forge_logins"] = forge_logins
    answer = await api.request("POST", "/create_user", json_body=body)
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
        logins = entry.get("forge_logins")
        rows.append(
            UserRow(
                name=entry["name"],
                github_login=login if isinstance(login, str) else None,
                admin=entry.get("is_admin") is True,
                active=entry.get("active") is True,
                forge_logins=tuple(
                    sorted(
                        (host, value)
                        for host, value in (logins if isinstance(logins, dict) else {}).items()
                        if isinstance(value, str)
                    )
                ),
            )
        )
    return rows


def format_table(rows: list[UserRow]) -> str:
    """A plain-text table with one line per user; a FORGE LOGINS column (HOST:LOGIN, comma
    separated) when some user has a login on a forge besides the configured GitHub."""
    header = ("NAME", "GITHUB LOGIN", "ADMIN", "ACTIVE")
    lines = [(r.name, r.github_login or "-", _yes_no(r.admin), _yes_no(r.active)) for r in rows]
    if not any(r.other_logins for r in rows):
        return table(header, lines)
    logins = [",".join(f"{host}:{login}" for host, login in r.forge_logins) or "-" for r in rows]
    return table(
        (*header, "FORGE LOGINS"), [(*line, more) for line, more in zip(lines, logins, strict=True)]
    )


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _create_user_command(args: argparse.Namespace) -> int:
    logins = _forge_logins(args.forge_login)
    print(
        run_api(
            lambda api: create_user(api, args.username, args.password, args.github_login, logins)
        )
    )
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
    logins: dict[str, str | None] = {**_forge_logins(args.forge_login)}
    for host in args.remove_forge_login:
        if host in logins:
            raise CommandError(f"{host} is both given a login and removed; choose one", exit_code=2)
        logins[host] = None
    if logins:
        fields["forge_logins"] = logins
    if args.disable or args.enable:
        fields["active"] = args.enable
    if not fields:
        raise CommandError(
            "nothing to change: give --password-stdin, --github-login, --forge-login, "
            "--remove-forge-login, --disable or --enable"
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
