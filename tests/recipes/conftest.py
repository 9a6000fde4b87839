"""Recipe tests: real files in temporary repositories, the reference recipes, a fake DataONE."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from tests.fakes.dataone import FakeDataOne
from tests.support.data import OGDC_RECIPES

REFERENCE = OGDC_RECIPES


@dataclass(frozen=True)
class Link:
    """A symlink to `target`; `{outside}` in it stands for a directory beside the repository."""

    target: str


FileTree = Mapping[str, "str | bytes | Link | None"]


def materialise(repo: Path, files: FileTree) -> None:
    """Write `files` (repository-relative path -> text, bytes, Link, or None for a
    directory) under `repo`, and an outside directory with a secret and a recipe."""
    outside = repo.parent / "outside"
    (outside / "recipe").mkdir(parents=True, exist_ok=True)
    (outside / "secret.sh").write_text("cat /etc/shadow\n")
    (outside / "recipe" / "meta.yml").write_text("name: outside\n")
    repo.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif isinstance(content, Link):
            os.symlink(content.target.format(outside=outside), path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")


@pytest.fixture
def reference_repo() -> Path:
    """The real recipes of QGreenland-Net/ogdc-recipes, vendored in tests/data."""
    return REFERENCE


@pytest.fixture
async def dataone() -> AsyncIterator[tuple[FakeDataOne, str]]:
    """A running fake DataONE node and its base URL (like DATAONE_NODE_URL)."""
    fake = FakeDataOne()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
