"""The committed JSON Schema of meta.yml matches the models and judges recipes like them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from ogdc_hooks.recipes.schema import SCHEMA_ID, SCHEMA_PATH, schema_text

VALID: dict[str, Any] = {
    "name": "Sea ice",
    "workflow": {"type": "shell"},
    "input": {"params": [{"value": "https://example.org/a.tif"}]},
}


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_committed_schema_matches_the_models() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "recipes_schema/meta.schema.json is out of date: run python -m ogdc_hooks.recipes.schema"
    )


def test_schema_has_identity() -> None:
    schema = json.loads(schema_text())
    assert schema["$id"] == SCHEMA_ID
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "OGDC recipe meta.yml"
    assert schema["required"] == ["name", "workflow", "input"]


def test_reference_recipes_follow_the_schema(
    validator: Draft202012Validator, reference_repo: Path
) -> None:
    metas = sorted(reference_repo.glob("recipes/*/meta.yml"))
    assert metas
    for meta in metas:
        errors = [
            error.message for error in validator.iter_errors(yaml.safe_load(meta.read_text()))
        ]
        assert errors == [], meta


@pytest.mark.parametrize(
    "change",
    [
        {"name": "seal_tags"},
        {"colour": "red"},
        {"workflow": {"type": "python"}},
        {"workflow": {"type": "shell", "parallel": {"partition_size": 0}}},
        {"input": {"params": []}},
        {"input": {"params": [{"value": "ftp://example.org/a.tif"}]}},
        {"input": {"params": [{"type": "dataone"}]}},
        {"output": {"type": "s3"}},
    ],
)
def test_schema_refuses_what_the_models_refuse(
    validator: Draft202012Validator, change: dict[str, Any]
) -> None:
    assert validator.is_valid(VALID)
    assert not validator.is_valid({**VALID, **change})


def test_module_rewrites_and_checks_the_file(tmp_path: Path) -> None:
    target = tmp_path / "meta.schema.json"
    command = [sys.executable, "-m", "ogdc_hooks.recipes.schema"]
    written = subprocess.run([*command, str(target)], capture_output=True, text=True, check=False)
    assert written.returncode == 0, written.stderr
    assert target.read_text(encoding="utf-8") == schema_text()
    assert subprocess.run([*command, "--check", str(target)], check=False).returncode == 0
    target.write_text("{}\n")
    stale = subprocess.run(
        [*command, "--check", str(target)], capture_output=True, text=True, check=False
    )
    assert stale.returncode == 1
    assert "out of date" in stale.stdout
