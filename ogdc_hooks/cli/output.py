"""How commands print: a padded table for people, `--json` for scripts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the API's answer as JSON, for scripts"
    )


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=True))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, one line per row, columns padded to their widest cell."""
    cells = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )
