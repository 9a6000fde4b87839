"""What a user name, a password, a GitHub login and a forge login may look like.

Shared by the API (request validation and its OpenAPI schema) and the CLI.
Patterns avoid look-around so that pydantic's Rust regex engine, JSON Schema
tools and JavaScript all read them the same way.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from ogdc_hooks.db.tables import HOST_MAX, LOGIN_MAX

USERNAME_MAX = 150
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
GITHUB_LOGIN_MAX = 39

# Starts with a letter or digit (so never "." or ".." in a URL path), then letters,
# digits and . _ @ + -
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$"
# GitHub: letters, digits and single hyphens, not at either end; at most 39 characters.
GITHUB_LOGIN_PATTERN = r"^[A-Za-z0-9](?:-?[A-Za-z0-9])*$"
# Any forge (Forgejo and Gitea: modules/validation/helpers.go, validUsernamePatternWithDots
# and invalidUsernamePattern; at most 40 characters): letters and digits, with single
# - . _ between them. Every GitHub login is one too.
FORGE_LOGIN_MAX = LOGIN_MAX
FORGE_LOGIN_PATTERN = r"^[A-Za-z0-9]+(?:[-._][A-Za-z0-9]+)*$"
# A forge instance: a DNS name (or IPv4 address) in lower case, with an optional port.
FORGE_HOST_MAX = HOST_MAX
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
FORGE_HOST_PATTERN = rf"^{_LABEL}(?:\.{_LABEL})*(?::{_PORT})?$"
FORGE_LOGINS_MAX = 32  # hosts in one request

FORGE_LOGIN_WORDS = "letters and digits, with single - . or _ between them"
FORGE_HOST_WORDS = "a host name in lower case, such as codeberg.org, with an optional :port"
GITHUB_LOGIN_WORDS = "letters, digits and single hyphens, not at either end"

Username = Annotated[
    str,
    Field(
        min_length=1,
        max_length=USERNAME_MAX,
        pattern=USERNAME_PATTERN,
        examples=["alice"],
        description="letters, digits and . _ @ + -, starting with a letter or digit",
    ),
]
Password = Annotated[str, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
GithubLogin = Annotated[
    str,
    Field(
        min_length=1,
        max_length=GITHUB_LOGIN_MAX,
        pattern=GITHUB_LOGIN_PATTERN,
        description=f"a GitHub login: {GITHUB_LOGIN_WORDS}",
    ),
]
ForgeHost = Annotated[
    str,
    Field(
        min_length=1,
        max_length=FORGE_HOST_MAX,
        pattern=FORGE_HOST_PATTERN,
        examples=["codeberg.org"],
        description=f"a forge instance: {FORGE_HOST_WORDS}",
    ),
]
ForgeLogin = Annotated[
    str,
    Field(
        min_length=1,
        max_length=FORGE_LOGIN_MAX,
        pattern=FORGE_LOGIN_PATTERN,
        examples=["alice"],
        description=f"a login on that forge: {FORGE_LOGIN_WORDS}",
    ),
]
# What a login attempt may send: anything that could be a stored name or password,
# bounded so that nobody makes the service hash a megabyte.
LoginName = Annotated[str, Field(min_length=1, max_length=USERNAME_MAX)]
LoginPassword = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)]


def forge_host_problem(host: str) -> str | None:
    """Why `host` cannot name a forge instance, in words; None when it can."""
    if not host:
        return "the host is empty"
    if len(host) > FORGE_HOST_MAX:
        return f"the host has more than {FORGE_HOST_MAX} characters"
    if not re.fullmatch(FORGE_HOST_PATTERN, host):
        return f"{host!r} is not {FORGE_HOST_WORDS} (1-65535)"
    return None


def forge_login_problem(login: str, *, github: bool = False) -> str | None:
    """Why `login` cannot be a login (on the configured GitHub when `github`), in words."""
    limit, pattern, words = (
        (GITHUB_LOGIN_MAX, GITHUB_LOGIN_PATTERN, GITHUB_LOGIN_WORDS)
        if github
        else (FORGE_LOGIN_MAX, FORGE_LOGIN_PATTERN, FORGE_LOGIN_WORDS)
    )
    kind = "GitHub login" if github else "login"
    if not login:
        return f"the {kind} is empty"
    if len(login) > limit:
        return f"the {kind} has {len(login)} characters, more than {limit}"
    if not re.fullmatch(pattern, login):
        return f"{login!r} is not a {kind}: {words}"
    return None


def split_forge_login(text: str) -> tuple[str, str]:
    """HOST[:PORT]:LOGIN as (host in lower case, login); ValueError says what is wrong in
    words.

    A login never holds a colon, so the last one separates them.
    """
    host, colon, login = text.rpartition(":")
    if not colon:
        raise ValueError(f"{text!r} has no colon: give HOST:LOGIN, e.g. codeberg.org:alice")
    problem = forge_host_problem(host.lower()) or forge_login_problem(login)
    if problem:
        raise ValueError(f"{text!r} is not HOST:LOGIN: {problem}")
    return host.lower(), login
