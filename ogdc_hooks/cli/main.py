"""Entry point of `ogdc-hooks`: builds the parser from every command module and runs one.

Every command module has `register(subparsers)`, which adds its subcommands and
sets `func` on each: a callable taking the parsed arguments and returning the
exit code. A `CommandError` becomes one line on stderr and exit code 1; no
traceback ever reaches the user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ogdc_hooks import __version__
from ogdc_hooks.cli import dev, recipes, render, runs, server, tokens, users
from ogdc_hooks.cli.errors import CommandError

COMMAND_MODULES = (server, users, tokens, recipes, render, runs, dev)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ogdc-hooks",
        description="GitOps front door for OGDC recipes: webhooks, API and tools.",
    )
    parser.add_argument("--version", action="version", version=f"ogdc-hooks {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except CommandError as err:
        print(f"ogdc-hooks: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    return code
