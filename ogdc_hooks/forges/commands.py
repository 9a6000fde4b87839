"""The commands people may write in a pull request comment (`/ogdc run [recipe-dir]`); pure, so
every forge reads them the same way."""

from __future__ import annotations

import re

# The first line of the comment, alone: "/ogdc run" or "/ogdc run recipes/<dir>" ("<dir>" alone
# also names recipes/<dir>). Anything else in the comment's first line is not a command.
_RUN = re.compile(r"/ogdc\s+run(?:\s+(?P<recipe>\S+))?\s*")
_DIR = re.compile(r"[A-Za-z0-9._-]+")


class NotACommand(ValueError):
    """The comment asks nothing of ogdc-hooks."""


def run_command(body: str) -> str | None:
    """The recipe directory `/ogdc run` names, or None for every changed recipe; raises
    `NotACommand` when the comment's first line is not one, or names no recipe directory."""
    first = body.strip().split("\n", 1)[0].strip() if body else ""
    match = _RUN.fullmatch(first)
    if match is None:
        raise NotACommand("not an /ogdc run comment")
    recipe = match.group("recipe")
    if recipe is None:
        return None
    name = recipe.strip("/").removeprefix("recipes/")
    if not _DIR.fullmatch(name) or name in (".", ".."):
        raise NotACommand(f"{recipe!r} is not a recipe directory (recipes/<dir>)")
    return f"recipes/{name}"
