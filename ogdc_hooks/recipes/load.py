"""Loading a recipe from a repository checkout, reading nothing outside it.

Recipes come from repositories that anybody with push access controls, so every
path is checked before it is read: no `..`, no absolute paths, no symlink
leading out of the repository, no file over its size cap, nothing but UTF-8
text. Loading is synchronous file I/O: async callers run it in
`asyncio.to_thread`. Every problem of a recipe is reported at once
(`RecipeInvalid`); warnings of a valid recipe travel on `Recipe.warnings`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path, PurePosixPath

from ogdc_hooks.recipes.model import Recipe, ShellWorkflow, VizWorkflow
from ogdc_hooks.recipes.problems import (
    Problem,
    RecipeInvalid,
    Severity,
    capped,
    sort_problems,
)
from ogdc_hooks.recipes.render.errors import UnsupportedWorkflow
from ogdc_hooks.recipes.render.visualization import VizConfig
from ogdc_hooks.recipes.validate import LoadPolicy, Reporter, check_meta
from ogdc_hooks.recipes.yaml_source import DataPath, Mark, parse_mapping

__all__ = [
    "MAX_META_BYTES",
    "MAX_SCRIPT_BYTES",
    "MAX_VIZ_CONFIG_BYTES",
    "META_NAMES",
    "LoadPolicy",
    "find_recipe_dirs",
    "load_recipe",
    "parse_commands",
    "recipe_dir_of",
]

META_NAMES = ("meta.yml", "meta.yaml")
MIB = 1024 * 1024
MAX_META_BYTES = MIB
MAX_SCRIPT_BYTES = MIB
MAX_VIZ_CONFIG_BYTES = 10 * MIB
DEFAULT_POLICY = LoadPolicy()


class _Refusal(Exception):
    """A file that cannot be used. `mark` is set when its content is at fault (a position
    in that file); otherwise the fault lies with whatever named the file."""

    def __init__(self, message: str, mark: Mark | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _Checkout:
    """Reads files of one repository checkout by repository-relative path, and only those."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def locate(self, relative: PurePosixPath) -> Path:
        """The real path of `relative`, which must stay inside the repository."""
        if relative.is_absolute() or ".." in relative.parts:
            raise _Refusal(f"{str(relative)!r} must be a relative path without '..'")
        try:
            real = self.root.joinpath(*relative.parts).resolve()
        except (OSError, RuntimeError):
            raise _Refusal(f"{relative} is a symlink loop") from None
        if not real.is_relative_to(self.root):
            raise _Refusal(f"{relative} leads outside the repository through a symlink")
        return real

    def exists(self, relative: PurePosixPath) -> bool:
        return os.path.lexists(self.root.joinpath(*relative.parts))

    def read_text(self, relative: PurePosixPath, limit: int) -> str:
        real = self.locate(relative)
        try:
            info = real.stat()
        except FileNotFoundError:
            raise _Refusal(f"file {relative} does not exist") from None
        if not stat.S_ISREG(info.st_mode):
            raise _Refusal(f"{relative} is not a regular file")
        try:
            # No following a symlink swapped in since `locate`, no waiting on a FIFO.
            descriptor = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(descriptor, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise _Refusal(f"{relative} is not a regular file")
                data = handle.read(limit + 1)
        except OSError as err:
            raise _Refusal(f"{relative} cannot be read: {err.strerror}") from None
        if len(data) > limit:
            raise _Refusal(
                f"this file is larger than {limit // MIB} MiB, the limit for recipe files",
                Mark(1, 1),
            )
        return _decode(data)


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Refusal(
            f"this file is not valid UTF-8 (byte 0x{data[err.start]:02x})",
            _byte_mark(data, err.start),
        ) from None
    if "\x00" in text:
        raise _Refusal(
            "this file contains a NUL character; it must be text",
            _byte_mark(data, data.index(b"\x00")),
        )
    return text.removeprefix("\ufeff")


def _byte_mark(data: bytes, offset: int) -> Mark:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return Mark(data.count(b"\n", 0, offset) + 1, offset - line_start + 1)


def load_recipe(repo_root: Path, recipe_dir: str, policy: LoadPolicy = DEFAULT_POLICY) -> Recipe:
    """Load and validate the recipe at `recipe_dir` (relative to `repo_root`, e.g.
    `recipes/seal-tags`), or raise `RecipeInvalid` with every problem found."""
    checkout = _Checkout(repo_root)
    directory = PurePosixPath(recipe_dir)
    meta_file, text = _read_meta(checkout, directory)
    meta_path = str(meta_file)
    parsed = parse_mapping(text, meta_path)
    if parsed.data is None:
        raise RecipeInvalid(capped(tuple(parsed.problems), policy.max_problems))
    check = check_meta(parsed.data, parsed.positions, meta_path, policy)
    report = Reporter(meta_path, parsed.positions, [*parsed.problems, *check.problems])
    commands: tuple[str, ...] = ()
    viz_config = "{}"
    if isinstance(check.workflow, ShellWorkflow):
        commands = _commands(
            checkout, directory, check.workflow.sh_file, report, policy.max_commands
        )
    elif isinstance(check.workflow, VizWorkflow) and check.workflow.config_file is not None:
        viz_config = _viz_config(checkout, directory, check.workflow.config_file, report)
    problems = capped(sort_problems(report.problems), policy.max_problems)
    if check.meta is None or any(problem.severity == "error" for problem in problems):
        raise RecipeInvalid(problems)
    return Recipe(
        directory=str(directory),
        meta_path=meta_path,
        meta=check.meta,
        commands=commands,
        viz_config=viz_config,
        warnings=problems,
    )


def _read_meta(checkout: _Checkout, directory: PurePosixPath) -> tuple[PurePosixPath, str]:
    """The recipe's meta file and its text; every failure is the recipe's only problem."""
    try:
        if not directory.parts:
            raise _Refusal("a recipe directory inside the repository is needed")
        if not checkout.locate(directory).is_dir():
            raise _Refusal(f"{directory} is not a directory in the repository")
    except _Refusal as refusal:
        raise _invalid(directory, refusal) from None
    present = [directory / name for name in META_NAMES if checkout.exists(directory / name)]
    if len(present) > 1:
        raise _invalid(present[1], _Refusal("both meta.yml and meta.yaml exist; keep only one"))
    if not present:
        raise _invalid(
            directory / META_NAMES[0], _Refusal(f"{directory} has no meta.yml (or meta.yaml)")
        )
    try:
        return present[0], checkout.read_text(present[0], MAX_META_BYTES)
    except _Refusal as refusal:
        raise _invalid(present[0], refusal) from None


def _invalid(path: PurePosixPath, refusal: _Refusal) -> RecipeInvalid:
    mark = refusal.mark or Mark(1, 1)
    return RecipeInvalid((Problem(str(path), mark.line, mark.column, "", refusal.message),))


def _read_named(
    checkout: _Checkout,
    directory: PurePosixPath,
    name: str,
    *,
    limit: int,
    report: Reporter,
    where: DataPath,
) -> tuple[PurePosixPath, str | None]:
    """A file that meta.yml names at `where`, read if it is inside the recipe directory.

    Returns its repository path and text (None when it cannot be read, with
    the problem reported on the name in meta.yml or on the file itself).
    """
    named = PurePosixPath(name)
    if named.is_absolute() or ".." in named.parts:
        report.at_value(where, f"{name!r} must be a path inside the recipe directory")
        return named, None
    relative = directory / named
    try:
        return relative, checkout.read_text(relative, limit)
    except _Refusal as refusal:
        if refusal.mark is None:
            report.at_value(where, refusal.message)
        else:
            report.problems.append(_in_file(relative, refusal.mark, refusal.message))
        return relative, None


def _in_file(
    path: PurePosixPath, mark: Mark, message: str, severity: Severity = "error"
) -> Problem:
    return Problem(str(path), mark.line, mark.column, "", message, severity)


def _commands(
    checkout: _Checkout,
    directory: PurePosixPath,
    sh_file: str,
    report: Reporter,
    max_commands: int,
) -> tuple[str, ...]:
    where = ("workflow", "sh_file")
    script, text = _read_named(
        checkout, directory, sh_file, limit=MAX_SCRIPT_BYTES, report=report, where=where
    )
    if text is None:
        return ()
    commands, crlf, stray_cr = parse_commands(text)
    if crlf is not None:
        report.problems.append(
            _in_file(
                script,
                crlf,
                "Windows line endings (CRLF): the carriage returns are removed from the commands",
                "warning",
            )
        )
    if stray_cr is not None:
        report.problems.append(
            _in_file(script, stray_cr, "a carriage return (CR) inside a line is not allowed")
        )
    if not commands:
        report.problems.append(
            _in_file(script, Mark(1, 1), "no commands: every line is blank or a comment")
        )
    if len(commands) > max_commands:
        report.problems.append(
            _in_file(
                script,
                Mark(1, 1),
                f"{len(commands)} commands, more than the limit of {max_commands} "
                "(OGDC_MAX_COMMANDS): each becomes a workflow step; join commands into "
                "fewer lines or split the recipe",
            )
        )
    return commands


def parse_commands(text: str) -> tuple[tuple[str, ...], Mark | None, Mark | None]:
    """The commands of a recipe script: every line that is not blank and whose first
    non-blank character is not `#`, without a trailing `\r`.

    Also returns where the first CRLF line ending is (accepted, worth a warning)
    and where the first carriage return inside a line is (an error: it would
    reach the command).
    """
    commands = []
    crlf = stray_cr = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if crlf is None and line != raw:
            crlf = Mark(number, len(line) + 1)
        inside = line.find("\r")
        if stray_cr is None and inside >= 0:
            stray_cr = Mark(number, inside + 1)
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            commands.append(line)
    return tuple(commands), crlf, stray_cr


def _viz_config(
    checkout: _Checkout, directory: PurePosixPath, config_file: str, report: Reporter
) -> str:
    where = ("workflow", "config_file")
    path, text = _read_named(
        checkout, directory, config_file, limit=MAX_VIZ_CONFIG_BYTES, report=report, where=where
    )
    if text is None:
        return "{}"
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        report.problems.append(
            _in_file(path, Mark(err.lineno, err.colno), f"this file is not valid JSON: {err.msg}")
        )
    except RecursionError:
        report.problems.append(_in_file(path, Mark(1, 1), "this JSON is nested too deeply"))
    else:
        try:
            VizConfig.read(text)  # the stages it chooses, checked as rendering will
        except UnsupportedWorkflow as err:
            report.problems.append(_in_file(path, Mark(1, 1), str(err)))
    return text


def find_recipe_dirs(repo_root: Path) -> list[str]:
    """Every `recipes/<dir>` holding a meta.yml or meta.yaml, sorted, relative to the root.

    An entry of `recipes/` that leads outside the repository is listed too, so
    that loading it reports the refusal instead of the recipe vanishing.
    """
    checkout = _Checkout(repo_root)
    recipes = PurePosixPath("recipes")
    try:
        if not checkout.locate(recipes).is_dir():
            return []
    except _Refusal:
        return []
    found = []
    for entry in os.scandir(checkout.root / "recipes"):
        directory = recipes / entry.name
        try:
            checkout.locate(directory)
        except _Refusal:
            found.append(str(directory))
            continue
        if any(checkout.exists(directory / name) for name in META_NAMES):
            found.append(str(directory))
    return sorted(found)


def recipe_dir_of(path: str) -> str | None:
    """The recipe directory (`recipes/<dir>`) a changed file belongs to, if any."""
    parts = PurePosixPath(path).parts
    if len(parts) < 3 or parts[0] != "recipes" or ".." in parts:
        return None
    return f"recipes/{parts[1]}"
