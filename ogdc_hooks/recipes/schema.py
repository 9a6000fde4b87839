"""The JSON Schema of `meta.yml`, generated from the models so that the two cannot drift.

`recipes_schema/meta.schema.json` is the committed copy editors point at; a
test fails when it differs from what the models generate. Rewrite it with
`python -m ogdc_hooks.recipes.schema` (or check it with `--check`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ogdc_hooks.recipes.model import RecipeMeta

SCHEMA_ID = (
    "https://raw.githubusercontent.com/QGreenland-Net/ogdc-hooks/main/"
    "recipes_schema/meta.schema.json"
)
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "recipes_schema" / "meta.schema.json"


def meta_schema() -> dict[str, Any]:
    """The schema as a dict: the models' own, with an identity and a description."""
    generated = RecipeMeta.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **generated,
        "title": "OGDC recipe meta.yml",
        "description": (
            "The metadata of an OGDC recipe: its name, workflow, inputs and output. "
            "See docs/recipes.md of ogdc-hooks. Generated from ogdc_hooks.recipes.model."
        ),
    }


def schema_text() -> str:
    """The schema exactly as committed: two-space indents, a final newline."""
    return json.dumps(meta_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ogdc_hooks.recipes.schema",
        description="Write the JSON Schema of meta.yml generated from the models.",
    )
    parser.add_argument("path", nargs="?", type=Path, default=SCHEMA_PATH)
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if the file is out of date"
    )
    args = parser.parse_args(argv)
    text = schema_text()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is out of date; run python -m ogdc_hooks.recipes.schema")
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text, encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
