"""The image installs pinned dependencies: deploy/requirements.lock, checked by hash.

`pyproject.toml` keeps ranges for people who install ogdc-hooks as a library;
the lock is what the image gets, so two builds a month apart are the same.
The README's "Dependencies" paragraph says how the lock is refreshed.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import DEPLOY, ROOT

LOCK = DEPLOY / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)")
# The libraries whose next major version would most likely break us (the issue that
# asked for the lock named them); each must have an upper bound.
BOUNDED = ("hera", "gidgethub", "sqlalchemy", "aiohttp", "pydantic")


def _lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) for every requirement of the lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in LOCK.read_text().splitlines():
        pinned = PIN.match(line)
        if pinned:
            current = canonicalize_name(pinned.group(1).split("[")[0])
            entries[current] = (pinned.group(2), [])
        elif current and line.strip().startswith("--hash=sha256:"):
            entries[current][1].append(line.strip().split(":", 1)[1].rstrip(" \\"))
    return entries


def _dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_every_locked_package_is_pinned_with_hashes() -> None:
    entries = _lock_entries()
    assert len(entries) >= len(_dependencies())
    for name, (version, hashes) in entries.items():
        assert hashes, f"{name}=={version} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in hashes), name


def test_the_lock_satisfies_every_range_of_pyproject() -> None:
    entries = _lock_entries()
    for requirement in _dependencies():
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement} is not in {LOCK.name}"
        version, _ = entries[name]
        assert requirement.specifier.contains(version), f"{name}=={version} outside {requirement}"


def test_the_libraries_we_depend_on_most_have_an_upper_bound() -> None:
    for requirement in _dependencies():
        if canonicalize_name(requirement.name) in BOUNDED:
            assert any(spec.operator == "<" for spec in requirement.specifier), requirement


def test_the_image_install_has_exactly_the_locked_versions(image_venv: Path) -> None:
    """install.sh really installs from the lock: the venv holds its versions and nothing else."""
    listing = subprocess.run(
        [
            str(image_venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m, json;"
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {canonicalize_name(name): version for name, version in json.loads(listing).items()}
    assert installed.pop("ogdc-hooks")
    locked = {name: version for name, (version, _) in _lock_entries().items()}
    assert installed == locked
