"""What a refused push says: who pushed, on which forge, and the command that lets them in.

Forge-neutral: the forge is named by its label ("GitHub", "Forgejo at codeberg.org")
and its host (the key of users' forge logins). The message's first line is a headline
of at most `HEADLINE_CHARS` characters that says it all by itself, because that line
is all some forges show (a commit status's description holds 140 characters); the
lines after it explain.
"""

from __future__ import annotations

from typing import Final

HEADLINE_CHARS: Final = 140  # GitHub's commit-status description, the tightest limit
_CUT: Final = "…"


def add_login_command(host: str, login: str | None) -> str:
    """The command an admin runs to give an existing user this forge login."""
    return f"ogdc-hooks users update NAME --forge-login {host}:{login or 'LOGIN'}"


def create_user_command(host: str, login: str | None) -> str:
    """The command an admin runs to add a new user with this forge login."""
    return f"ogdc-hooks create-user NAME PASSWORD --forge-login {host}:{login or 'LOGIN'}"


def _fit(candidates: list[str]) -> str:
    """The first candidate within `HEADLINE_CHARS`; the last one cut to fit if none is."""
    for candidate in candidates:
        if len(candidate) <= HEADLINE_CHARS:
            return candidate
    return candidates[-1][: HEADLINE_CHARS - len(_CUT)] + _CUT


def unknown_pusher_headline(label: str, host: str, login: str | None) -> str:
    """One line of at most 140 characters: who pushed and what an admin must do."""
    if not login:
        return _fit(
            [
                f"Pushed by no {label} account ogdc-hooks knows, so not accepted. "
                "Push again as a known ogdc-hooks user.",
                "Pushed by no account ogdc-hooks knows; push again as a known user.",
            ]
        )
    command = add_login_command(host, login)
    return _fit(
        [
            f"@{login} on {label} is not an ogdc-hooks user. An admin runs: {command}",
            f"@{login} is not an ogdc-hooks user. Admin: {command}",
            f"Unknown pusher; an admin runs: {command}",
            f"@{login} is not an ogdc-hooks user; an admin adds them with --forge-login "
            f"{host}:{login}",
        ]
    )


def unknown_pusher_message(label: str, host: str, login: str | None, *, swept: bool = False) -> str:
    """Why a push by `login` on the forge at `host` was refused, and how to let it in.

    `swept`: the branch-head sweep found the commit (no webhook came), and `login` is the
    account the forge links its author to, if any.
    """
    who = f"@{login}" if login else f"no {label} account"
    if swept:
        happened = (
            "No push webhook for this commit reached ogdc-hooks; the branch-head sweep found "
            f"it. {label} links its author to {who}, which is not a known, active ogdc-hooks "
            "user, so nothing was submitted."
        )
    elif login:
        happened = (
            f"{who} pushed this commit on {label}, but no known, active ogdc-hooks user has the "
            f"login {login} on {host}, so nothing was submitted."
        )
    else:
        happened = (
            f"{label} named no pusher for this commit, so no ogdc-hooks user could be found "
            "and nothing was submitted."
        )
    remedy = (
        "An ogdc-hooks admin must add the login to its user with "
        f"`{add_login_command(host, login)}` (or create one with "
        f"`{create_user_command(host, login)}`; a disabled user needs "
        "`ogdc-hooks users update NAME --enable`), then push again or re-run this check."
    )
    return f"{unknown_pusher_headline(label, host, login)}\n\n{happened} {remedy}"


def headline_of(message: str) -> str:
    """The first line of a message written by `unknown_pusher_message` (or any message)."""
    return message.split("\n", 1)[0]
