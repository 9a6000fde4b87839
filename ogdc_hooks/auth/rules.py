"""What a user name, a password and a GitHub login may look like.

Shared by the API (request validation and its OpenAPI schema) and the CLI.
Patterns avoid look-around so that pydantic's Rust regex engine, JSON Schema
tools and JavaScript all read them the same way.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

USERNAME_MAX = 150
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
GITHUB_LOGIN_MAX = 39

# Starts with a letter or digit (so never "." or ".." in a URL path), then letters,
# digits and . _ @ + -
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$"
# GitHub: letters, digits and single hyphens, not at either end; at most 39 characters.
GITHUB_LOGIN_PATTERN = r"^[A-Za-z0-9](?:-?[A-Za-z0-9])*$"

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
        description="a GitHub login: letters, digits and single hyphens, not at either end",
    ),
]
# What a login attempt may send: anything that could be a stored name or password,
# bounded so that nobody makes the service hash a megabyte.
LoginName = Annotated[str, Field(min_length=1, max_length=USERNAME_MAX)]
LoginPassword = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)]
