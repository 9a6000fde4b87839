"""Bounds on what a recipe may cost: problems kept, commands, rendered workflow size."""

from __future__ import annotations

from pathlib import Path

import pytest

from ogdc_hooks.recipes.load import LoadPolicy, load_recipe
from ogdc_hooks.recipes.problems import RecipeInvalid
from ogdc_hooks.recipes.render import RenderSettings, WorkflowTooLarge, render_workflow
from tests.recipes.conftest import materialise
from tests.recipes.test_load import SHELL_META as META
from tests.recipes.test_render_helpers import make_recipe, run_identity, url_inputs


def test_only_the_first_problems_are_kept_and_the_rest_counted(tmp_path: Path) -> None:
    unknown = "".join(f"unknown_{n}: 1\n" for n in range(5000))
    materialise(tmp_path, {"recipes/x/meta.yml": META + unknown, "recipes/x/recipe.sh": "ls\n"})
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(tmp_path, "recipes/x", LoadPolicy(max_problems=50))
    problems = caught.value.problems
    assert len(problems) == 51
    assert problems[-1].severity == "error"
    assert "and 4950 more problem(s) not shown" in problems[-1].message
    assert "OGDC_MAX_PROBLEMS" in problems[-1].message


def test_too_many_commands_are_one_clear_problem(tmp_path: Path) -> None:
    script = "".join("x\n" for _ in range(200_000))
    materialise(tmp_path, {"recipes/x/meta.yml": META, "recipes/x/recipe.sh": script})
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(tmp_path, "recipes/x", LoadPolicy(max_commands=500))
    [problem] = caught.value.problems
    assert problem.path == "recipes/x/recipe.sh"
    assert "200000 commands, more than the limit of 500" in problem.message
    assert "OGDC_MAX_COMMANDS" in problem.message


def test_a_recipe_at_the_command_limit_loads(tmp_path: Path) -> None:
    script = "".join(f"echo {n}\n" for n in range(500))
    materialise(tmp_path, {"recipes/x/meta.yml": META, "recipes/x/recipe.sh": script})
    assert len(load_recipe(tmp_path, "recipes/x", LoadPolicy(max_commands=500)).commands) == 500


def test_workflows_past_the_template_limit_are_refused() -> None:
    recipe = make_recipe(commands=tuple(f"echo {n}" for n in range(30)))
    settings = RenderSettings(max_templates=20)
    with pytest.raises(WorkflowTooLarge, match=r"more than the limit of 20.*TEMPLATES"):
        render_workflow(recipe, url_inputs(1), settings, run_identity())


def test_workflows_past_the_byte_limit_are_refused() -> None:
    recipe = make_recipe(commands=("echo " + "a" * 40_000,))
    settings = RenderSettings(max_bytes=32 * 1024)
    with pytest.raises(WorkflowTooLarge, match=r"more than the limit of 32768.*BYTES"):
        render_workflow(recipe, url_inputs(1), settings, run_identity())
    assert render_workflow(recipe, url_inputs(1), RenderSettings(), run_identity())
