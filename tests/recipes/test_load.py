"""Loading valid recipes: the reference recipes, accepted variants, the helpers of loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from ogdc_hooks.forges.github.checks import problem_annotation
from ogdc_hooks.recipes.load import (
    LoadPolicy,
    find_recipe_dirs,
    load_recipe,
    parse_commands,
    recipe_dir_of,
)
from ogdc_hooks.recipes.model import (
    DataOneInput,
    PvcMountInput,
    ShellWorkflow,
    UrlInput,
    VizWorkflow,
)
from ogdc_hooks.recipes.problems import Problem, RecipeInvalid
from ogdc_hooks.recipes.yaml_source import Mark
from ogdc_hooks.settings import Settings
from tests.recipes.conftest import REFERENCE, Link, materialise

REFERENCE_DIRS = [
    "recipes/agb-plant",
    "recipes/agb-woodyplant",
    "recipes/agb-woodyplant-dominance",
    "recipes/greenland-ice-sheet",
    "recipes/sea-ice-conc",
    "recipes/seal-tags",
    "recipes/viz-workflow",
]
SHELL_META = """\
name: Sea ice
workflow:
  type: shell
input:
  params:
    - value: https://example.org/data/in.tif
"""


def test_finds_every_reference_recipe(reference_repo: Path) -> None:
    assert find_recipe_dirs(reference_repo) == REFERENCE_DIRS


@pytest.mark.parametrize("recipe_dir", REFERENCE_DIRS)
def test_every_reference_recipe_validates(reference_repo: Path, recipe_dir: str) -> None:
    recipe = load_recipe(reference_repo, recipe_dir, LoadPolicy())
    assert recipe.directory == recipe_dir
    assert recipe.meta_path == f"{recipe_dir}/meta.yml"
    if isinstance(recipe.meta.workflow, ShellWorkflow):
        assert recipe.commands
        assert all(not command.lstrip().startswith("#") for command in recipe.commands)
        assert recipe.warnings == ()


def test_seal_tags_in_detail(reference_repo: Path) -> None:
    recipe = load_recipe(reference_repo, "recipes/seal-tags", LoadPolicy())
    assert recipe.id == "water-measurements-from-seal-tag-data"
    assert recipe.meta.output.type == "temporary"
    assert recipe.meta.input.params == [
        DataOneInput(
            type="dataone",
            dataset_identifier="resource_map_urn:uuid:cfe3fbb2-0585-40b5-8243-8fa47fcfeb9b",
            filename="ct71_ODV.csv",
        )
    ]
    assert recipe.commands == (
        'ogr2ogr -lco ENCODING=UTF-8 -t_srs "EPSG:3413" -makevalid -s_srs "EPSG:4326" '
        "-oo X_POSSIBLE_NAMES=Longitude -oo Y_POSSIBLE_NAMES=Latitude "
        "/output_dir/ct71_ODV_epsg3413.gpkg /input_dir/ct71_ODV.csv",
    )


def test_sea_ice_commands_skip_comments_and_blank_lines(reference_repo: Path) -> None:
    recipe = load_recipe(reference_repo, "recipes/sea-ice-conc", LoadPolicy())
    assert [command.split()[0] for command in recipe.commands] == [
        "gdal_calc.py",
        "gdalwarp",
        "gdal_translate",
        "cp",
    ]
    assert recipe.meta.input.params == [
        UrlInput(
            value="https://noaadata.apps.nsidc.org/NOAA/G02135/north/monthly/geotiff/"
            "09_Sep/N_202309_concentration_v4.0.tif"
        )
    ]


def test_viz_reference_is_parallel_with_dataone_output_and_a_warning(
    reference_repo: Path,
) -> None:
    """As ogdc-runner 0.4.2 reads it: `dataone_id` without `type` is a dataone output."""
    recipe = load_recipe(reference_repo, "recipes/viz-workflow", LoadPolicy())
    assert isinstance(recipe.meta.workflow, VizWorkflow)
    assert recipe.meta.workflow.parallel.enabled
    assert recipe.meta.workflow.parallel.partition_size == 10
    assert recipe.meta.output.type == "dataone"
    assert recipe.meta.output.dataone_id == "TODO"
    assert recipe.viz_config == (REFERENCE / "recipes/viz-workflow/config.json").read_text()
    assert [str(warning) for warning in recipe.warnings] == [
        "recipes/viz-workflow/meta.yml:33:3: warning: output.dataone_id: makes the output "
        "dataone; dataone output is not supported yet: the recipe validates, but submitting "
        "it fails until ogdc-hooks can publish to DataONE; use pvc or temporary output to "
        "run it now",
    ]


def test_meta_yaml_is_accepted(tmp_path: Path) -> None:
    materialise(
        tmp_path / "repo", {"recipes/r/meta.yaml": SHELL_META, "recipes/r/recipe.sh": "ls\n"}
    )
    recipe = load_recipe(tmp_path / "repo", "recipes/r", LoadPolicy())
    assert recipe.meta_path == "recipes/r/meta.yaml"
    assert find_recipe_dirs(tmp_path / "repo") == ["recipes/r"]


def test_symlinks_inside_the_repository_are_followed(tmp_path: Path) -> None:
    materialise(
        tmp_path / "repo",
        {
            "common/common.sh": "echo common\n",
            "common/meta.yml": SHELL_META,
            "recipes/r/meta.yml": Link("../../common/meta.yml"),
            "recipes/r/recipe.sh": Link("../../common/common.sh"),
            "recipes/alias": Link("r"),
        },
    )
    for recipe_dir in ("recipes/r", "recipes/alias"):
        recipe = load_recipe(tmp_path / "repo", recipe_dir, LoadPolicy())
        assert recipe.commands == ("echo common",)
        assert recipe.directory == recipe_dir


def test_crlf_script_gives_clean_commands(tmp_path: Path) -> None:
    materialise(
        tmp_path / "repo",
        {
            "recipes/r/meta.yml": SHELL_META,
            "recipes/r/recipe.sh": "# c\r\necho one\r\n  ls -l  \r\n",
        },
    )
    recipe = load_recipe(tmp_path / "repo", "recipes/r", LoadPolicy())
    assert recipe.commands == ("echo one", "  ls -l  ")
    assert [warning.severity for warning in recipe.warnings] == ["warning"]


def test_allowlisted_pvc_and_dataone_output_validate(tmp_path: Path) -> None:
    meta = (
        "name: From archive\n"
        "workflow:\n"
        "  type: shell\n"
        "  parallel: {enabled: true, partition_size: 3, max_parallelism: 2}\n"
        "input:\n"
        "  params:\n"
        "    - {type: pvc_mount, claim_name: archive, path: /surveys/2024, glob: '*.tif'}\n"
        "    - {type: pvc_mount, claim_name: workflow-pvc, path: staged}\n"
        "output: {type: dataone, dataone_id: 'doi:10.18739/X'}\n"
    )
    materialise(tmp_path / "repo", {"recipes/r/meta.yml": meta, "recipes/r/recipe.sh": "ls\n"})
    policy = LoadPolicy(workflow_pvc_name="workflow-pvc", allowed_input_pvcs=("archive",))
    recipe = load_recipe(tmp_path / "repo", "recipes/r", policy)
    [warning] = recipe.warnings
    assert (warning.line, warning.key_path) == (9, "output.type")
    assert warning.message.startswith("dataone output is not supported yet")
    assert recipe.meta.output.type == "dataone"
    first = recipe.meta.input.params[0]
    assert isinstance(first, PvcMountInput)
    assert (first.claim_name, first.path, first.glob) == ("archive", "/surveys/2024", "*.tif")
    assert isinstance(recipe.meta.workflow, ShellWorkflow)
    assert recipe.meta.workflow.parallel.partition_size == 3
    with pytest.raises(RecipeInvalid):
        load_recipe(tmp_path / "repo", "recipes/r", LoadPolicy())


def test_policy_from_settings() -> None:
    settings = Settings(workflow_pvc_name="pvc-a", allowed_input_pvcs=("b", "c"))
    assert LoadPolicy.from_settings(settings) == LoadPolicy("pvc-a", ("b", "c"))
    assert LoadPolicy() == LoadPolicy.from_settings(Settings())


def test_invalid_recipe_reports_every_problem_with_annotations(tmp_path: Path) -> None:
    materialise(tmp_path / "repo", {"recipes/r/meta.yml": "name: a_b\nworkflow: {type: shell}\n"})
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(tmp_path / "repo", "recipes/r", LoadPolicy())
    assert caught.value.problems == (
        Problem("recipes/r/meta.yml", 1, 1, "input", "required key is missing"),
        Problem(
            "recipes/r/meta.yml",
            1,
            7,
            "name",
            "'a_b' may only contain letters, digits, spaces, '.' and '-'",
        ),
        Problem(
            "recipes/r/meta.yml",
            2,
            11,
            "workflow.sh_file",
            "file recipes/r/recipe.sh does not exist",
        ),
    )
    assert problem_annotation(caught.value.problems[1]) == {
        "path": "recipes/r/meta.yml",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "failure",
        "message": "name: 'a_b' may only contain letters, digits, spaces, '.' and '-'",
    }
    assert str(caught.value).startswith("3 problem(s); first: recipes/r/meta.yml:1:1: input:")


def test_find_recipe_dirs_lists_odd_entries_for_loading_to_refuse(tmp_path: Path) -> None:
    materialise(
        tmp_path / "repo",
        {
            "recipes/b/meta.yml": SHELL_META,
            "recipes/a/meta.yaml": SHELL_META,
            "recipes/README.md": "# recipes\n",
            "recipes/empty": None,
            "recipes/dangling/meta.yml": Link("nowhere.yml"),
            "recipes/escape": Link("{outside}/recipe"),
            "recipes/nested/deeper/meta.yml": SHELL_META,
        },
    )
    assert find_recipe_dirs(tmp_path / "repo") == [
        "recipes/a",
        "recipes/b",
        "recipes/dangling",
        "recipes/escape",
    ]
    assert find_recipe_dirs(tmp_path / "outside") == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("recipes/seal-tags/recipe.sh", "recipes/seal-tags"),
        ("recipes/seal-tags/meta.yml", "recipes/seal-tags"),
        ("recipes/viz/data/config.json", "recipes/viz"),
        ("./recipes/x/meta.yml", "recipes/x"),
        ("recipes/README.md", None),
        ("recipes", None),
        ("README.md", None),
        ("docs/recipes/x/meta.yml", None),
        ("recipes/../x/meta.yml", None),
        ("/recipes/x/meta.yml", None),
    ],
)
def test_recipe_dir_of(path: str, expected: str | None) -> None:
    assert recipe_dir_of(path) == expected


@pytest.mark.parametrize(
    ("text", "commands", "crlf", "stray"),
    [
        ("a\nb\n", ("a", "b"), None, None),
        (
            "#!/bin/sh\n  # indented\n\t\n   \nrun  # trailing comment\n",
            ("run  # trailing comment",),
            None,
            None,
        ),
        ("a\r\nb\n", ("a", "b"), Mark(1, 2), None),
        ("a\rb", ("a\rb",), None, Mark(1, 2)),
        ("no newline at end", ("no newline at end",), None, None),
        ("", (), None, None),
    ],
)
def test_parse_commands(
    text: str, commands: tuple[str, ...], crlf: Mark | None, stray: Mark | None
) -> None:
    assert parse_commands(text) == (commands, crlf, stray)
