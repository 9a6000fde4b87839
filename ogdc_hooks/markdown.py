"""Markdown for the text shown on commits (check runs render GitHub Flavored Markdown)."""

from __future__ import annotations

import re


def fence(text: str) -> str:
    """A code fence longer than any backtick run in `text`, so its content cannot escape it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def code_block(lines: str) -> str:
    """`lines` in a fenced code block."""
    mark = fence(lines)
    return f"{mark}\n{lines}\n{mark}"
