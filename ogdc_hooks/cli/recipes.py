"""`ogdc-hooks validate-recipe` and `ogdc-hooks validate-all-recipes`.

Problems print compiler-style (`path:line:column: key.path: sentence`), so
editors and CI problem matchers can jump to them; the exit code is 1 when any
recipe has an error. A GIT_URL (http or https) is fetched as the service fetches
a push (`checkout.py`), into a temporary directory that is always removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from ogdc_hooks.checkout import GitError, checkout
from ogdc_hooks.cli.errors import CommandError
from ogdc_hooks.recipes.dataone import DataOneError, resolve_inputs
from ogdc_hooks.recipes.load import LoadPolicy, find_recipe_dirs, load_recipe
from ogdc_hooks.recipes.model import InputFile, Recipe
from ogdc_hooks.recipes.problems import Problem, RecipeInvalid
from ogdc_hooks.redact import without_credentials
from ogdc_hooks.refs import resolve_ref
from ogdc_hooks.settings import Settings, SettingsError, load_settings

# Every form git takes, so that one it may not use here is refused in words, not as a path.
GIT_URL_PREFIXES = ("https://", "http://", "git://", "ssh://", "file://", "git@")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    one = subparsers.add_parser(
        "validate-recipe",
        help="check one recipe directory and print its problems",
        description="Check one recipe directory; exit 1 if it has errors.",
    )
    one.add_argument("directory", metavar="DIR", type=Path, help="the recipe directory")
    one.add_argument(
        "--resolve",
        action="store_true",
        help="also resolve url and DataONE inputs to files (DataONE through DATAONE_NODE_URL)",
    )
    one.set_defaults(func=validate_recipe_command)
    every = subparsers.add_parser(
        "validate-all-recipes",
        help="check every recipes/*/meta.yml of a repository",
        description="Check every recipe of a repository directory or git URL; "
        "exit 1 if any is invalid.",
    )
    every.add_argument("source", nargs="?", default=".", metavar="DIR | GIT_URL", help="default: .")
    every.add_argument(
        "--ref", help="branch, tag or commit of GIT_URL (default: the remote's HEAD)"
    )
    every.set_defaults(func=validate_all_command)


def recipe_in(directory: Path) -> tuple[Settings, Path, str]:
    """The settings, the repository root and the recipe's path in it, for a recipe directory."""
    settings = settings_or_fail()
    if not directory.is_dir():
        raise CommandError(f"{directory} is not a directory")
    root, recipe_dir = split_recipe_path(directory)
    return settings, root, recipe_dir


def validate_recipe_command(args: argparse.Namespace) -> int:
    settings, root, recipe_dir = recipe_in(args.directory)
    try:
        recipe = load_recipe(root, recipe_dir, LoadPolicy.from_settings(settings))
    except RecipeInvalid as err:
        _print_problems(err.problems)
        print(f"{_mark(False)} {recipe_dir}: {_tally(err.problems)}")
        return 1
    _print_problems(recipe.warnings)
    if args.resolve:
        for file in resolve_or_fail(recipe, settings):
            print(f"input {file.filename} <- {file.url}")
    print(f"{_mark(True)} {recipe_dir}: valid{_warnings(recipe.warnings)}")
    return 0


def validate_all_command(args: argparse.Namespace) -> int:
    policy = LoadPolicy.from_settings(settings_or_fail())
    source: str = args.source
    if source.startswith(GIT_URL_PREFIXES):
        with (
            tempfile.TemporaryDirectory(prefix="ogdc-hooks-recipes-") as work,
            fetched(source, args.ref, Path(work)) as tree,
        ):
            return validate_all(tree, policy, without_credentials(source))
    if args.ref is not None:
        raise CommandError("--ref only applies to a GIT_URL")
    if not Path(source).is_dir():
        raise CommandError(f"{source} is neither a directory nor a git URL")
    return validate_all(Path(source), policy, source)


def validate_all(root: Path, policy: LoadPolicy, label: str) -> int:
    """Print a line per recipe (and its problems) and a summary; 1 if any is invalid."""
    recipe_dirs = find_recipe_dirs(root)
    if not recipe_dirs:
        raise CommandError(f"no recipes in {label}: found no recipes/*/meta.yml")
    invalid = 0
    for recipe_dir in recipe_dirs:
        try:
            problems = load_recipe(root, recipe_dir, policy).warnings
            valid = True
        except RecipeInvalid as err:
            problems, valid = err.problems, False
            invalid += 1
        print(f"{_mark(valid)} {recipe_dir}")
        _print_problems(problems, indent="  ")
    count = len(recipe_dirs)
    print(
        f"{count} recipe{'s' if count != 1 else ''} in {label}: "
        f"{count - invalid} valid, {invalid} invalid"
    )
    return 1 if invalid else 0


def split_recipe_path(directory: Path) -> tuple[Path, str]:
    """The repository root for a recipe directory (the nearest parent holding `recipes/`,
    else the directory's parent) and the recipe's path relative to it."""
    absolute = Path(os.path.abspath(directory))
    for parent in absolute.parents:
        if (parent / "recipes").is_dir():
            return parent, absolute.relative_to(parent).as_posix()
    return absolute.parent, absolute.name


@contextlib.contextmanager
def fetched(url: str, ref: str | None, into: Path) -> Iterator[Path]:
    """The work tree of `ref` of `url` (a branch, tag or commit; default: the remote's HEAD),
    fetched one commit deep under `into` the way the service fetches pushes (`checkout.py`:
    http(s) only, credentials in a header, no redirects followed, under the clone limits),
    and removed afterwards."""
    if ref is not None and (not ref or ref.startswith("-")):
        raise CommandError(f"--ref {ref!r} is not a git reference")
    settings = settings_or_fail()
    where = f"{without_credentials(url)} at {ref}" if ref else without_credentials(url)
    try:
        sha = asyncio.run(_commit_of(url, ref or "HEAD", settings))
        if sha is None:
            raise CommandError(f"cannot fetch {where}: couldn't find remote ref {ref or 'HEAD'}")
        with checkout(
            url,
            sha,
            into,
            timeout_s=settings.git_timeout_seconds,
            max_bytes=settings.clone_max_bytes,
            max_files=settings.clone_max_files,
            max_memory=settings.git_max_memory_bytes,
        ) as tree:
            yield tree
    except GitError as err:
        raise CommandError(f"cannot fetch {where}: {err}") from None


async def _commit_of(url: str, ref: str, settings: Settings) -> str | None:
    async with aiohttp.ClientSession() as session:
        return await resolve_ref(
            session,
            url,
            ref,
            timeout_s=settings.git_lookup_timeout_seconds,
            max_refs=settings.git_max_refs,
        )


def resolve_or_fail(recipe: Recipe, settings: Settings) -> list[InputFile]:
    """The recipe's input files, DataONE resolved through the network; one line on failure."""

    async def resolve() -> list[InputFile]:
        async with aiohttp.ClientSession() as session:
            return await resolve_inputs(recipe, settings.dataone_node_url, session)

    try:
        return asyncio.run(resolve())
    except DataOneError as err:
        raise CommandError(" ".join(str(err).split())) from None


def settings_or_fail() -> Settings:
    try:
        return load_settings()
    except SettingsError as err:
        raise CommandError(str(err)) from None


def _print_problems(problems: Sequence[Problem], indent: str = "") -> None:
    for problem in problems:
        print(f"{indent}{problem}")


def _tally(problems: Sequence[Problem]) -> str:
    errors = sum(problem.severity == "error" for problem in problems)
    return f"{errors} error{'s' if errors != 1 else ''}{_warnings(problems)}"


def _warnings(problems: Sequence[Problem]) -> str:
    count = sum(problem.severity == "warning" for problem in problems)
    return f", {count} warning{'s' if count != 1 else ''}" if count else ""


def _mark(valid: bool) -> str:
    """✓ or ✗, or plain words where the terminal cannot show them."""
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
    except UnicodeEncodeError:
        return "ok" if valid else "FAILED"
    return "✓" if valid else "✗"
