"""Resolving inputs against the fake DataONE node over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ogdc_hooks.recipes.dataone import (
    FIELDS,
    PAGE_SIZE,
    DataOneError,
    glob_matches,
    resolve_inputs,
    solr_query,
)
from ogdc_hooks.recipes.load import LoadPolicy, load_recipe
from ogdc_hooks.recipes.model import InputFile, Recipe
from tests.fakes.dataone import FakeDataOne
from tests.recipes.conftest import materialise

PACKAGE = "resource_map_urn:uuid:cfe3fbb2-0585-40b5-8243-8fa47fcfeb9b"
Node = tuple[FakeDataOne, str]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def recipe_with(tmp_path: Path, params: str) -> Recipe:
    meta = f"name: Test\nworkflow:\n  type: shell\ninput:\n  params:\n{params}"
    materialise(tmp_path / "repo", {"recipes/r/meta.yml": meta, "recipes/r/recipe.sh": "ls\n"})
    policy = LoadPolicy(workflow_pvc_name="workflow-pvc")
    return load_recipe(tmp_path / "repo", "recipes/r", policy)


def object_url(node: str, package: str, index: int) -> str:
    return f"{node}/v2/object/urn%3Auuid%3A{package.replace(':', '%3A')}%2F{index}"


async def test_reference_recipe_resolves_like_ogdc_runner(
    dataone: Node, session: aiohttp.ClientSession, reference_repo: Path
) -> None:
    fake, node = dataone
    fake.add_package(PACKAGE, ["ct71_ODV.csv", "ct71_ODV.txt", "README.pdf"])
    recipe = load_recipe(reference_repo, "recipes/seal-tags", LoadPolicy())
    files = await resolve_inputs(recipe, node, session)
    assert files == [InputFile(object_url(node, PACKAGE, 0), "ct71_ODV.csv")]
    assert fake.requests == [
        {
            "q": f'resourceMap:"{PACKAGE}" AND -formatType:METADATA',
            "fl": "id,title,formatId,size,fileName,abstract,description",
            "rows": "50",
            "start": "0",
            "wt": "json",
        }
    ]


async def test_inputs_in_param_order_and_each_package_listed_once(
    tmp_path: Path, dataone: Node, session: aiohttp.ClientSession
) -> None:
    fake, node = dataone
    fake.add_package("pkg-a", ["B3.tif", "a3.TIF", "b2.tif", "notes.txt"])
    recipe = recipe_with(
        tmp_path,
        "    - {type: dataone, dataset_identifier: pkg-a, filename: 'b?.tif'}\n"
        "    - value: https://example.org/dir/first%20file.tif?download=1\n"
        "    - {type: dataone, dataset_identifier: pkg-a, filename: 'A*'}\n",
    )
    files = await resolve_inputs(recipe, node, session)
    assert [file.filename for file in files] == ["B3.tif", "b2.tif", "first file.tif", "a3.TIF"]
    assert files[2].url == "https://example.org/dir/first%20file.tif?download=1"
    assert files[0].url == object_url(node, "pkg-a", 0)
    assert len(fake.requests) == 1


async def test_without_a_pattern_every_object_is_used_and_metadata_never(
    tmp_path: Path, dataone: Node, session: aiohttp.ClientSession
) -> None:
    fake, node = dataone
    fake.add_package("pkg", ["z.nc", "a.nc"])
    recipe = recipe_with(tmp_path, "    - {type: dataone, dataset_identifier: pkg}\n")
    files = await resolve_inputs(recipe, node, session)
    assert [file.filename for file in files] == ["a.nc", "z.nc"]


async def test_pages_through_large_packages(
    tmp_path: Path, dataone: Node, session: aiohttp.ClientSession
) -> None:
    fake, node = dataone
    fake.add_package("big", [f"tile_{index:03}.tif" for index in range(2 * PAGE_SIZE + 7)])
    recipe = recipe_with(
        tmp_path, "    - {type: dataone, dataset_identifier: big, filename: 'TILE_*.tif'}\n"
    )
    files = await resolve_inputs(recipe, node, session)
    assert len(files) == 2 * PAGE_SIZE + 7
    assert len({file.url for file in files}) == len(files)
    assert [request["start"] for request in fake.requests] == ["0", "50", "100"]


async def test_overlapping_patterns_give_each_file_once(
    tmp_path: Path, dataone: Node, session: aiohttp.ClientSession
) -> None:
    fake, node = dataone
    fake.add_package("pkg", ["a1.tif", "a2.tif", "b1.tif"])
    recipe = recipe_with(
        tmp_path,
        "    - {type: dataone, dataset_identifier: pkg, filename: 'a*'}\n"
        "    - {type: dataone, dataset_identifier: pkg, filename: '*1.tif'}\n",
    )
    files = await resolve_inputs(recipe, node, session)
    assert [file.filename for file in files] == ["a1.tif", "a2.tif", "b1.tif"]


async def test_two_files_under_one_name_are_refused(
    tmp_path: Path, dataone: Node, session: aiohttp.ClientSession
) -> None:
    fake, node = dataone
    fake.add_package("pkg", ["data.csv"])
    recipe = recipe_with(
        tmp_path,
        "    - value: https://example.org/data.csv\n"
        "    - {type: dataone, dataset_identifier: pkg}\n",
    )
    with pytest.raises(DataOneError) as caught:
        await resolve_inputs(recipe, node, session)
    assert str(caught.value) == (
        "two inputs would be saved as 'data.csv' (https://example.org/data.csv and "
        f"{object_url(node, 'pkg', 0)}); narrow the filename patterns"
    )


async def test_pvc_inputs_give_no_files(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    recipe = recipe_with(
        tmp_path, "    - {type: pvc_mount, claim_name: workflow-pvc, path: staged}\n"
    )
    assert await resolve_inputs(recipe, "http://127.0.0.1:9", session) == []


async def test_no_match_names_package_pattern_and_files(
    tmp_path: Path, dataone: Node, session: aiohttp.ClientSession
) -> None:
    fake, node = dataone
    fake.add_package("pkg", ["a.csv", "b.csv"])
    recipe = recipe_with(
        tmp_path, "    - {type: dataone, dataset_identifier: pkg, filename: '*.tif'}\n"
    )
    with pytest.raises(DataOneError) as caught:
        await resolve_inputs(recipe, node, session)
    assert str(caught.value) == (
        "DataONE package 'pkg' (filename '*.tif'): no file name matches the pattern; "
        "the package has a.csv, b.csv"
    )


async def test_empty_package(tmp_path: Path, dataone: Node, session: aiohttp.ClientSession) -> None:
    _, node = dataone
    recipe = recipe_with(tmp_path, "    - {type: dataone, dataset_identifier: 'doi:none'}\n")
    with pytest.raises(DataOneError) as caught:
        await resolve_inputs(recipe, node, session)
    assert str(caught.value) == (
        "DataONE package 'doi:none' (all files): the package has no data objects"
    )


@pytest.mark.parametrize(
    ("knob", "reason"),
    [
        ("fail_status", "gave a bad answer: HTTP 503"),
        ("garbage", "gave a bad answer: the answer is not JSON"),
        ("ignore_start", "gave a bad answer: paging at 50 repeated objects"),
    ],
)
async def test_bad_answers(
    tmp_path: Path, dataone: Node, session: aiohttp.ClientSession, knob: str, reason: str
) -> None:
    fake, node = dataone
    fake.add_package("pkg", [f"f{index}.tif" for index in range(PAGE_SIZE + 1)])
    setattr(fake, knob, 503 if knob == "fail_status" else True)
    recipe = recipe_with(
        tmp_path, "    - {type: dataone, dataset_identifier: pkg, filename: 'f1.tif'}\n"
    )
    with pytest.raises(DataOneError) as caught:
        await resolve_inputs(recipe, node, session)
    assert str(caught.value) == (
        f"DataONE package 'pkg' (filename 'f1.tif'): the DataONE node {node} {reason}"
    )


async def test_unsafe_file_name_from_the_node_is_refused(
    tmp_path: Path, dataone: Node, session: aiohttp.ClientSession
) -> None:
    fake, node = dataone
    fake.add_package("pkg", ["../../etc/cron.d/evil"])
    recipe = recipe_with(tmp_path, "    - {type: dataone, dataset_identifier: pkg}\n")
    with pytest.raises(DataOneError, match="cannot be used as a file name"):
        await resolve_inputs(recipe, node, session)


async def test_unreachable_node(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    recipe = recipe_with(
        tmp_path, "    - {type: dataone, dataset_identifier: pkg, filename: '*.nc'}\n"
    )
    with pytest.raises(DataOneError) as caught:
        await resolve_inputs(recipe, "http://127.0.0.1:9", session)
    assert str(caught.value).startswith(
        "DataONE package 'pkg' (filename '*.nc'): cannot reach the DataONE node "
        "http://127.0.0.1:9: "
    )


async def test_a_stalled_node_times_out(
    tmp_path: Path, dataone: Node, session: aiohttp.ClientSession
) -> None:
    fake, node = dataone
    fake.stall_seconds = 30
    recipe = recipe_with(tmp_path, "    - {type: dataone, dataset_identifier: pkg}\n")
    with pytest.raises(DataOneError) as caught:
        await resolve_inputs(
            recipe, node, session, request_timeout=aiohttp.ClientTimeout(total=0.2)
        )
    assert "cannot reach the DataONE node" in str(caught.value)


def test_query_quotes_the_identifier() -> None:
    assert solr_query('a"b\\c') == 'resourceMap:"a\\"b\\\\c" AND -formatType:METADATA'
    assert FIELDS == "id,title,formatId,size,fileName,abstract,description"


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("*.tif", "A.TIF", True),
        ("percent_gris_*.nc", "percent_gris_2100.nc", True),
        ("percent_gris_*.nc", "percent_gris_2100.nc.aux", False),
        ("b?.tif", "b12.tif", False),
        ("[ab].tif", "a.tif", False),
        ("[ab].tif", "[AB].tif", True),
        ("data.csv", "data_csv", False),
        ("*", "anything at all", True),
    ],
)
def test_glob(pattern: str, name: str, matches: bool) -> None:
    assert glob_matches(pattern, name) is matches
