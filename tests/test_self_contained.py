"""A clone of this repository is all that its code, tests, benchmarks and docs need.

Nothing may reach above the repository root (a sibling folder, one machine's
absolute path), and every document that code or docs name must be in the
repository, so that a user who clones it from GitHub has all of it.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.data import ROOT

CHECKED = ("ogdc_hooks", "tests", "bench", "deploy", ".ci")
VENDORED = Path("tests/data")  # third-party files, kept as they came (tests/data/README.md)
SOURCE_SUFFIXES = {".py", ".sh", ".md", ".toml", ".yaml", ".yml", ".env", ".json", ".cfg", ""}
# `Path(__file__)` followed by `.resolve()`, `.parent` and `.parents[N]` steps.
FILE_ANCHOR = re.compile(r"Path\(__file__\)((?:\.resolve\(\)|\.parent\b|\.parents\[\d+\])+)")
STEP = re.compile(r"\.parent\b|\.parents\[(\d+)\]")
# Places of one machine, or of the folder this project was developed beside.
OUTSIDE = re.compile(
    r"""(?x)
      ["'](?:/work|/home|/root|/Users)/       # an absolute path into someone's tree
    | \.\./shared\b                           # the development folder beside the repository
    | /\s*["']shared["']                      # ... joined as a path part
    | \b(?:ROOT|REPO|REPO_ROOT)\.parent\b     # one step above the repository root
    """
)
DOC_NAME = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
MARKDOWN_LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)#\s]+)")


def _repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [Path(name) for name in listed.decode().split("\0") if name]


FILES = [path for path in _repository_files() if (ROOT / path).is_file()]


def _text_files(*top: str) -> Iterator[Path]:
    this = Path(__file__).relative_to(ROOT)
    for path in FILES:
        wanted = path.parts[0] in top and path.suffix in SOURCE_SUFFIXES
        if wanted and not path.is_relative_to(VENDORED) and path != this:
            yield path


def _anchor_target(path: Path, steps: str) -> Path:
    """Where `Path(__file__)` + `steps` points, for the file at `path`."""
    target = (ROOT / path).resolve()
    for step in STEP.finditer(steps):
        target = target.parent if step.group(1) is None else target.parents[int(step.group(1))]
    return target


def test_nothing_reaches_above_the_repository_root() -> None:
    found = []
    for path in _text_files(*CHECKED):
        for number, line in enumerate((ROOT / path).read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path}:{number}: {line.strip()}")
            for anchor in FILE_ANCHOR.finditer(line):
                if not _anchor_target(path, anchor.group(1)).is_relative_to(ROOT):
                    found.append(f"{path}:{number}: above the root: {line.strip()}")
    assert found == []


def _prose(path: Path) -> str:
    """What a reader is told: a Python file's comments and docstrings, any other file whole."""
    text = (ROOT / path).read_text(errors="replace")
    if path.suffix != ".py":
        return text
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    comments = [token.string for token in tokens if token.type == tokenize.COMMENT]
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    docstrings = [
        ast.get_docstring(node) or ""
        for node in ast.walk(ast.parse(text))
        if isinstance(node, documented)
    ]
    return "\n".join(comments + docstrings)


def _known_document(name: str, mentioned_in: Path) -> bool:
    candidates = (ROOT / name, ROOT / mentioned_in.parent / name)
    return any(c.is_file() for c in candidates) or any(f.name == name for f in FILES)


def test_every_document_named_is_in_the_repository() -> None:
    """`docs/recipes.md`, `README.md`: fine; a brief that only its authors had: not."""
    missing = []
    for path in _text_files(*CHECKED, "README.md", "docs", "recipes_schema"):
        for name in set(DOC_NAME.findall(_prose(path))):
            if not _known_document(name, path):
                missing.append(f"{path}: {name}")
    assert missing == []


@pytest.mark.parametrize(
    "document", [p for p in FILES if p.suffix == ".md" and not p.is_relative_to(VENDORED)]
)
def test_relative_links_of_a_document_resolve_inside_the_repository(document: Path) -> None:
    broken = []
    for target in MARKDOWN_LINK.findall((ROOT / document).read_text()):
        resolved = (ROOT / document.parent / target).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert broken == []


def test_the_checks_see_the_repository() -> None:
    """The checks above would pass on an empty list; they must be reading the real tree."""
    checked = set(_text_files(*CHECKED))
    assert Path("tests/conftest.py") in checked
    assert Path("ogdc_hooks/settings.py") in checked
    assert Path("bench/render_bench.py") in checked


def test_ci_runs_the_readme_test_command_in_a_bare_clone() -> None:
    """What CI proves is what the README promises a user, from a clone with nothing beside it."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    lines = readme.splitlines()
    command = next(line for line in lines if "pytest" in line and "pip install" in line)
    assert command in ci.splitlines()
    assert "git clone" in ci and "mktemp -d" in ci
