"""`ogdc-hooks validate-recipe` and `validate-all-recipes`, run as real commands."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.dataone import FakeDataOne
from tests.recipes.conftest import materialise
from tests.support.gitserver import GitServer, git_server

__all__ = ["git_server"]  # the fixture

SHELL_META = "name: Good\nworkflow:\n  type: shell\ninput:\n  params:\n    - value: https://example.org/a.tif\n"
BAD_META = "name: Bad_one\nworkflow:\n  type: shell\ninput:\n  params: []\n"


def environment(tmp: Path | None = None, **extra: str) -> dict[str, str]:
    """The caller's environment without any service setting that could change the outcome."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OGDC_", "DATAONE_", "ARGO_", "GITHUB_", "GIT_"))
    }
    if tmp is not None:
        clean["TMPDIR"] = str(tmp)
    return {**clean, "PYTHONIOENCODING": "utf-8", **extra}


def run(
    *args: str, cwd: Path | None = None, tmp: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ogdc_hooks", *args],
        env=environment(tmp, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    return line.removeprefix("ogdc-hooks: error: ")


def test_valid_reference_recipe(reference_repo: Path) -> None:
    done = run("validate-recipe", str(reference_repo / "recipes/seal-tags"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "✓ recipes/seal-tags: valid\n", "")


def test_recipe_with_warnings_run_from_inside_it(reference_repo: Path) -> None:
    done = run("validate-recipe", ".", cwd=reference_repo / "recipes/viz-workflow")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        "recipes/viz-workflow/meta.yml:33:3: warning: output.dataone_id: makes the output "
        "dataone; dataone output is not supported yet: the recipe validates, but submitting "
        "it fails until ogdc-hooks can publish to DataONE; use pvc or temporary output to "
        "run it now",
        "✓ recipes/viz-workflow: valid, 1 warning",
    ]


def test_invalid_recipe_prints_problems_and_fails(tmp_path: Path) -> None:
    materialise(tmp_path / "repo", {"recipes/bad/meta.yml": BAD_META})
    done = run("validate-recipe", str(tmp_path / "repo/recipes/bad"))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "recipes/bad/meta.yml:1:7: name: 'Bad_one' may only contain letters, digits, "
        "spaces, '.' and '-'",
        "recipes/bad/meta.yml:3:3: workflow.sh_file: file recipes/bad/recipe.sh does not exist",
        "recipes/bad/meta.yml:5:11: input.params: must not be empty",
        "✗ recipes/bad: 3 errors",
    ]


def test_recipe_outside_a_recipes_folder_is_relative_to_its_parent(tmp_path: Path) -> None:
    materialise(tmp_path / "work", {"mine/meta.yml": SHELL_META, "mine/recipe.sh": "ls\n"})
    done = run("validate-recipe", "mine", cwd=tmp_path / "work")
    assert (done.returncode, done.stdout) == (0, "✓ mine: valid\n")


def test_missing_directory_is_one_line() -> None:
    done = run("validate-recipe", "/nonexistent/recipe")
    assert one_line_error(done) == "/nonexistent/recipe is not a directory"


def test_bad_setting_is_one_line(reference_repo: Path) -> None:
    done = run("validate-recipe", str(reference_repo / "recipes/seal-tags"), DATAONE_NODE_URL="x")
    assert one_line_error(done) == "DATAONE_NODE_URL: must be an http(s) URL, got 'x'"


async def test_resolve_lists_input_files(
    reference_repo: Path, dataone: tuple[FakeDataOne, str]
) -> None:
    fake, node = dataone
    fake.add_package("resource_map_doi:10.18739/A29G5GD39", ["percent_gris_1.nc", "x.csv"])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ogdc_hooks",
        "validate-recipe",
        str(reference_repo / "recipes/greenland-ice-sheet"),
        "--resolve",
        env=environment(DATAONE_NODE_URL=node),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert (process.returncode, stderr) == (0, b"")
    pid = "urn%3Auuid%3Aresource_map_doi%3A10.18739%2FA29G5GD39%2F0"
    assert stdout.decode().splitlines() == [
        f"input percent_gris_1.nc <- {node}/v2/object/{pid}",
        "✓ recipes/greenland-ice-sheet: valid",
    ]


def test_resolve_against_an_unreachable_node_is_one_line(reference_repo: Path) -> None:
    done = run(
        "validate-recipe",
        str(reference_repo / "recipes/seal-tags"),
        "--resolve",
        DATAONE_NODE_URL="http://127.0.0.1:9",
    )
    assert one_line_error(done).startswith(
        "DataONE package 'resource_map_urn:uuid:cfe3fbb2-0585-40b5-8243-8fa47fcfeb9b' "
        "(filename 'ct71_ODV.csv'): cannot reach the DataONE node http://127.0.0.1:9: "
    )


def test_all_reference_recipes(reference_repo: Path) -> None:
    done = run("validate-all-recipes", str(reference_repo))
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("✓")] == [
        "✓ recipes/agb-plant",
        "✓ recipes/agb-woodyplant",
        "✓ recipes/agb-woodyplant-dominance",
        "✓ recipes/greenland-ice-sheet",
        "✓ recipes/sea-ice-conc",
        "✓ recipes/seal-tags",
        "✓ recipes/viz-workflow",
    ]
    assert lines[-1] == f"7 recipes in {reference_repo}: 7 valid, 0 invalid"


def test_all_recipes_with_an_invalid_one(tmp_path: Path) -> None:
    materialise(
        tmp_path / "repo",
        {
            "recipes/good/meta.yml": SHELL_META,
            "recipes/good/recipe.sh": "ls\n",
            "recipes/bad/meta.yml": BAD_META,
            "recipes/bad/recipe.sh": "ls\n",
        },
    )
    done = run("validate-all-recipes", cwd=tmp_path / "repo")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "✗ recipes/bad",
        "  recipes/bad/meta.yml:1:7: name: 'Bad_one' may only contain letters, digits, "
        "spaces, '.' and '-'",
        "  recipes/bad/meta.yml:5:11: input.params: must not be empty",
        "✓ recipes/good",
        "2 recipes in .: 1 valid, 1 invalid",
    ]


def test_no_recipes_is_one_line(tmp_path: Path) -> None:
    done = run("validate-all-recipes", str(tmp_path))
    assert one_line_error(done) == f"no recipes in {tmp_path}: found no recipes/*/meta.yml"


def test_ref_needs_a_git_url(tmp_path: Path) -> None:
    done = run("validate-all-recipes", str(tmp_path), "--ref", "main")
    assert one_line_error(done) == "--ref only applies to a GIT_URL"


@pytest.fixture
def origin(git_server: GitServer) -> tuple[str, str]:
    """A git repository served over HTTP: `main` holds a good recipe; the tag `v1` and the
    returned commit hold it broken; `main` moved on after them."""
    git_server.create_repo("origin")
    broken = git_server.commit(
        "origin", {"recipes/r/meta.yml": BAD_META, "recipes/r/recipe.sh": "ls\n"}
    )
    git_server.tag("origin", "v1", broken)
    git_server.commit("origin", {"recipes/r/meta.yml": SHELL_META})
    return git_server.clone_url("origin"), broken


@pytest.mark.parametrize(
    ("ref", "valid"), [(None, True), ("main", True), ("v1", False), ("broken-commit", False)]
)
def test_git_url_at_a_ref(
    tmp_path: Path, origin: tuple[str, str], ref: str | None, valid: bool
) -> None:
    url, broken = origin
    temp = tmp_path / "temp"
    temp.mkdir()
    ref_args = [] if ref is None else ["--ref", broken if ref == "broken-commit" else ref]
    done = run("validate-all-recipes", url, *ref_args, tmp=temp)
    assert done.returncode == (0 if valid else 1), done.stderr
    assert done.stdout.splitlines()[0] == ("✓ recipes/r" if valid else "✗ recipes/r")
    assert done.stdout.splitlines()[-1].startswith(f"1 recipe in {url}: ")
    assert list(temp.iterdir()) == []


def test_git_url_with_unknown_ref_is_one_line_and_leaves_nothing(
    tmp_path: Path, origin: tuple[str, str]
) -> None:
    url, _ = origin
    temp = tmp_path / "temp"
    temp.mkdir()
    done = run("validate-all-recipes", url, "--ref", "nope", tmp=temp)
    assert one_line_error(done) == f"cannot fetch {url} at nope: couldn't find remote ref nope"
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("url", ["file:///etc", "ssh://git@example.org/r.git"])
def test_git_urls_other_than_http_are_refused_in_words(tmp_path: Path, url: str) -> None:
    """The CLI fetches as the service does (`checkout.py`): http(s) only."""
    done = run("validate-all-recipes", url, tmp=tmp_path)
    assert "only http(s) URLs are allowed" in one_line_error(done)
