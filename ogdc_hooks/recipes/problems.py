"""Problems found in a recipe: where (file, line, column, key path) and what, in one sentence.

The same objects print as compiler-style lines for the CLI; each forge shows them on the
commit its own way (GitHub: check-run annotations, in `forges/github/checks.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong (or worth a warning) in a recipe; positions are 1-based."""

    path: str  # relative to the repository root, POSIX separators
    line: int
    column: int
    key_path: str  # e.g. "input.params[0].type"; "" when the whole file is meant
    message: str
    severity: Severity = "error"
    end_line: int | None = None

    @property
    def what(self) -> str:
        """The sentence with the key path it is about, without the position."""
        return f"{self.key_path}: {self.message}" if self.key_path else self.message

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        label = "" if self.severity == "error" else "warning: "
        return f"{where}: {label}{self.what}"


def sort_problems(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    """In reading order: by file, then line, then column."""
    return tuple(sorted(problems, key=lambda problem: (problem.path, problem.line, problem.column)))


def capped(problems: tuple[Problem, ...], limit: int) -> tuple[Problem, ...]:
    """The first `limit` problems and, when there are more, one saying how many were left out
    (an error if any of them is): what is stored, reported and shown stays small."""
    if len(problems) <= limit:
        return problems
    rest = problems[limit:]
    first = rest[0]
    note = Problem(
        first.path,
        first.line,
        first.column,
        "",
        f"and {len(rest)} more problem(s) not shown: at most {limit} are kept "
        "(OGDC_MAX_PROBLEMS); fix these and validate again",
        "error" if any(p.severity == "error" for p in rest) else "warning",
    )
    return (*problems[:limit], note)


class RecipeInvalid(Exception):
    """A recipe has at least one error; carries every problem found, not just the first."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(f"{len(errors)} problem(s); first: {errors[0] if errors else problems[0]}")

    def __reduce__(self) -> tuple[type[RecipeInvalid], tuple[tuple[Problem, ...]]]:
        """Pickled with its problems (it crosses from the worker processes)."""
        return RecipeInvalid, (self.problems,)
