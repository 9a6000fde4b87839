"""`ogdc-hooks render DIR`: print the Argo Workflow a recipe would be submitted as.

Settings come from the environment, as the service reads them. Nothing touches
the network unless `--resolve` asks for DataONE inputs to be resolved as at
submission (through `DATAONE_NODE_URL`); without it each DataONE input is a
clearly marked placeholder, and a note on stderr says so. The run id is a fresh one, as a
submission would get; repository and commit are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from ogdc_hooks.cli.errors import CommandError
from ogdc_hooks.cli.recipes import recipe_in, resolve_or_fail
from ogdc_hooks.recipes.dataone import placeholder_inputs
from ogdc_hooks.recipes.load import LoadPolicy, load_recipe
from ogdc_hooks.recipes.problems import RecipeInvalid


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "render",
        help="print the Argo workflow a recipe would be submitted as",
        description="Print the Argo Workflow that submitting the recipe in DIR would create.",
    )
    parser.add_argument("directory", metavar="DIR", type=Path, help="the recipe directory")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    parser.add_argument(
        "--overwrite", action="store_true", help="render a run that replaces published output"
    )
    parser.add_argument(
        "--resolve",
        action="store_true",
        help="list the real files of DataONE inputs (asks DATAONE_NODE_URL); without it, "
        "nothing touches the network and each DataONE input is a marked placeholder",
    )
    parser.set_defaults(func=render_command)


def render_command(args: argparse.Namespace) -> int:
    settings, root, recipe_dir = recipe_in(args.directory)
    try:
        recipe = load_recipe(root, recipe_dir, LoadPolicy.from_settings(settings))
    except RecipeInvalid as err:
        errors = [problem for problem in err.problems if problem.severity == "error"]
        raise CommandError(
            f"{errors[0] if errors else recipe_dir} "
            f"({len(errors)} error(s); `ogdc-hooks validate-recipe {args.directory}` lists them)"
        ) from None
    # hera is imported only to render: other commands start faster without it.
    from ogdc_hooks.recipes.render import RenderError, RenderSettings, RunIdentity, render_workflow

    run = RunIdentity(run_id=uuid.uuid4().hex, recipe_path=recipe_dir, overwrite=args.overwrite)
    if args.resolve:
        inputs = resolve_or_fail(recipe, settings)
    else:
        inputs, unresolved = placeholder_inputs(recipe)
        if unresolved:
            print(
                f"note: {recipe_dir}: {unresolved} DataONE input(s) not resolved; the workflow "
                "lists an UNRESOLVED-... placeholder for each. Add --resolve to list the real "
                "files (asks DATAONE_NODE_URL).",
                file=sys.stderr,
            )
    try:
        manifest = render_workflow(recipe, inputs, RenderSettings.from_settings(settings), run)
    except RenderError as err:
        raise CommandError(f"{recipe_dir}: {err}") from None
    if args.format == "json":
        print(json.dumps(manifest, indent=2))
    else:
        print(yaml.safe_dump(manifest, sort_keys=False, width=100), end="")
    return 0
