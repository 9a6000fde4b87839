"""A push that changes more recipes than OGDC_SUMMARY_CHECK_THRESHOLD: one summary check lists
them all, and only a failed recipe gets a check of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ogdc_hooks.pipeline.summary import SUMMARY_BYTES, Entry, summary_text
from ogdc_hooks.runstate import RunState
from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import META, SCRIPT, Stack, push_payload, running_stack, wait_for
from tests.support.gitserver import GitServer

SUMMARY = "ogdc summary"


@pytest.fixture
async def bulk_stack(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> AsyncIterator[Stack]:
    env = {**stack_env, "OGDC_SUMMARY_CHECK_THRESHOLD": "2", "OGDC_SUMMARY_CHECK_SECONDS": "1"}
    async with running_stack(env, github, fake_argo, git_server) as running:
        yield running


async def test_a_big_push_has_one_summary_check_and_a_check_per_failure(
    bulk_stack: Stack,
) -> None:
    stack = bulk_stack
    before = stack.git.commit("recipes", {"README.md": "recipes\n"})
    files = {}
    for name, meta in (("a", META), ("b", META), ("bad", META.replace("type: url", "type: ftp"))):
        files[f"recipes/{name}/meta.yml"] = meta
        files[f"recipes/{name}/recipe.sh"] = SCRIPT
    after = stack.git.commit("recipes", files)
    await stack.deliver(push_payload(stack.git, before=before, after=after))

    names = await wait_for(lambda: len(stack.argo.created) == 2 and stack.argo.created)
    for name in names:
        stack.argo.set_phase(name, "Succeeded")
    summary = await stack.check_completed(after, SUMMARY)
    assert summary.conclusion == "failure"
    assert summary.output["title"] == "3 recipes: 1 invalid, 2 succeeded"
    text = summary.output["summary"]
    for name in names:
        assert f"(https://argo.example.org/workflows/qgnet/{name})" in text
    assert "### invalid (1)\n- `recipes/bad`" in text
    assert "### succeeded (2)" in text and "`recipes/a`" in text and "`recipes/b`" in text
    bad = await stack.check_completed(after, "ogdc/recipes/bad")
    assert bad.conclusion == "failure" and bad.annotations
    assert {run.name for run in stack.checks(after)} == {SUMMARY, "ogdc/recipes/bad"}
    assert len(stack.checks(after, SUMMARY)) == 1  # one check run, updated


def test_the_summary_of_500_recipes_lists_them_all_within_githubs_limit() -> None:
    entries = [
        Entry(f"recipes/bulk-edit-{n:03d}", RunState.SUCCEEDED, f"ogdc-bulk-edit-{n:03d}-x7k2p")
        for n in range(500)
    ]
    text = summary_text(entries, "c" * 40, ui_base="https://argo.example.org", namespace="qgnet")
    assert len(text.encode()) <= SUMMARY_BYTES
    assert text.count("\n- [`recipes/bulk-edit-") == 500
    many = entries * 4
    cut = summary_text(many, "c" * 40, ui_base="https://argo.example.org", namespace="qgnet")
    assert len(cut.encode()) <= SUMMARY_BYTES and "more (GitHub's size limit)" in cut
