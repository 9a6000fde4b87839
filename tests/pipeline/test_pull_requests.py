"""Pull requests and merge groups end to end: each changed recipe validated and rendered, never
submitted, with a preview of its run on the head commit; forks fetched through the base
repository; payloads from GitHub's published examples (`tests/fakes/github_payloads.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes import github_payloads
from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import (
    INSTALLATION_ID,
    META,
    REPO,
    SCRIPT,
    Stack,
    allowing,
    running_stack,
    wait_for,
)
from tests.support.gitserver import GitServer

BAD_META = META.replace("type: url", "type: ftp")
FORK = "forker/recipes"


def _recipe(name: str, meta: str = META) -> dict[str, str]:
    return {f"recipes/{name}/meta.yml": meta, f"recipes/{name}/recipe.sh": SCRIPT}


def _pull_request(
    stack: Stack, action: str, base: str, head: str, number: int = 7, *, fork: bool = False
) -> dict[str, Any]:
    return github_payloads.pull_request(
        action,
        repository=REPO,
        clone_url=stack.git.clone_url("recipes"),
        number=number,
        base_sha=base,
        head_sha=head,
        author="outsider",
        installation=INSTALLATION_ID,
        head_repository=FORK if fork else None,
        head_clone_url=stack.git.clone_url("forker-recipes") if fork else None,
    )


def _open_branch(stack: Stack, files: dict[str, str | None], number: int = 7) -> tuple[str, str]:
    """A pull request's head on a branch of the repository, kept at refs/pull/N/head too."""
    base = stack.git.head("recipes") or stack.git.commit("recipes", {"README.md": "recipes\n"})
    head = stack.git.commit("recipes", files, branch="change-recipes", parent=base)
    stack.git.set_ref("recipes", f"refs/pull/{number}/head", head)
    return base, head


async def _checks(stack: Stack, sha: str, *names: str) -> dict[str, Any]:
    return {name: await stack.check_completed(sha, name, within=90) for name in names}


async def test_a_branch_pull_request_shows_each_recipe_and_what_it_would_run(stack: Stack) -> None:
    base, head = _open_branch(stack, {**_recipe("good"), **_recipe("bad", BAD_META)})
    status, _ = await stack.deliver(_pull_request(stack, "opened", base, head), "pull_request")
    assert status == 202
    checks = await _checks(stack, head, "ogdc/recipes/good", "ogdc/recipes/bad")
    good, bad = checks["ogdc/recipes/good"], checks["ogdc/recipes/bad"]
    assert good.conclusion == "neutral"
    summary = good.output["summary"]
    assert "Pull request #7: validated and rendered, not submitted" in summary
    assert "### What Argo would run" in summary
    assert "`ghcr.io/qgreenland-net/ogdc-runner:latest`" in summary
    assert "1: URL at `data.example.org`" in summary
    assert "```mermaid\ngraph TD" in summary
    assert "<details><summary>Rendered workflow (YAML)</summary>" in summary
    assert "The recipe is new" in summary
    assert bad.conclusion == "failure"
    assert bad.annotations[0]["path"] == "recipes/bad/meta.yml"
    assert stack.argo.created == []  # a pull request never reaches Argo

    # The same delivery again, or ready_for_review at the same head, makes no second check.
    await stack.deliver(_pull_request(stack, "ready_for_review", base, head), "pull_request")
    await wait_for(stack.settled, what="the queue settled")
    assert len(stack.checks(head, "ogdc/recipes/good")) == 1


async def test_a_fork_is_fetched_through_the_base_repository(stack: Stack) -> None:
    base = stack.git.commit("recipes", {"README.md": "recipes\n"})
    head = stack.git.commit(
        "recipes", {**_recipe("good"), **_recipe("bad", BAD_META)}, branch="fork-tmp", parent=base
    )
    stack.git.set_ref("recipes", "refs/pull/9/head", head)  # as GitHub keeps a fork's head
    stack.git.delete_branch("recipes", "fork-tmp")
    await stack.deliver(_pull_request(stack, "opened", base, head, 9, fork=True), "pull_request")
    checks = await _checks(stack, head, "ogdc/recipes/good", "ogdc/recipes/bad")
    assert checks["ogdc/recipes/good"].conclusion == "neutral"
    assert checks["ogdc/recipes/bad"].conclusion == "failure"
    assert {r.path for r in stack.git.requests} <= {
        "/recipes.git/info/refs",
        "/recipes.git/git-upload-pack",
    }  # never the fork's own repository
    assert stack.argo.created == []


async def test_the_preview_shows_the_change_against_the_merge_base(stack: Stack) -> None:
    old_url = "https://data.example.org/ice/N_202309_concentration.tif"
    start = stack.git.commit("recipes", _recipe("sea-ice"))
    head = stack.git.commit(
        "recipes",
        {"recipes/sea-ice/meta.yml": META.replace(old_url, "https://new.example.org/ice.tif")},
        branch="change-recipes",
        parent=start,
    )
    stack.git.set_ref("recipes", "refs/pull/7/head", head)
    tip = stack.git.commit("recipes", _recipe("other"))  # main moved on after the branch
    await stack.deliver(_pull_request(stack, "opened", tip, head), "pull_request")
    check = await stack.check_completed(head, "ogdc/recipes/sea-ice")
    summary = check.output["summary"]
    assert "```diff" in summary
    diff = summary.split("```diff")[1].split("```")[0].splitlines()
    assert [line for line in diff if line.startswith("-") and old_url in line]
    assert [line for line in diff if line.startswith("+") and "new.example.org/ice.tif" in line]
    assert "1: URL at `new.example.org`" in summary
    await wait_for(stack.settled, what="the queue settled")
    assert stack.checks(head, "ogdc/recipes/other") == []  # main's change, not the PR's

    # A push to the pull request changes its preview, on the new head.
    newer = stack.git.commit(
        "recipes",
        {"recipes/sea-ice/meta.yml": META.replace(old_url, "https://third.example.org/x.tif")},
        branch="change-recipes",
    )
    stack.git.set_ref("recipes", "refs/pull/7/head", newer)
    await stack.deliver(_pull_request(stack, "synchronize", tip, newer), "pull_request")
    again = await stack.check_completed(newer, "ogdc/recipes/sea-ice")
    assert "third.example.org" in again.output["summary"]
    assert "new.example.org" not in again.output["summary"].split("```diff")[0]

    # A re-run of the check validates and renders again, with its preview.
    payload = github_payloads.check_run_rerequested(
        repository=REPO,
        clone_url=stack.git.clone_url("recipes"),
        head_sha=newer,
        external_id=again.external_id,
        sender="recipe-author",
        installation=INSTALLATION_ID,
    )
    await stack.deliver(payload, "check_run")

    def rerun_done() -> Any:
        runs = stack.checks(newer, "ogdc/recipes/sea-ice")
        return next((r for r in runs[1:] if r.status == "completed"), None)

    rerun = await wait_for(rerun_done, what="the re-run's check completed")
    assert rerun.external_id != again.external_id
    assert "```diff" in rerun.output["summary"]
    assert stack.argo.created == []

    # Closed, a pull request is no longer followed.
    await stack.deliver(_pull_request(stack, "closed", tip, newer), "pull_request")
    await wait_for(stack.settled, what="the queue settled")
    connection = await stack.database()
    try:
        assert await connection.fetchval("SELECT open FROM pull_requests WHERE number = 7") is False
    finally:
        await connection.close()


async def test_no_recipe_no_check_and_a_merge_group_gets_checks_on_its_head(
    stack: Stack,
) -> None:
    start, readme = _open_branch(stack, {"README.md": "more words\n"})
    await stack.deliver(_pull_request(stack, "opened", start, readme), "pull_request")
    await wait_for(stack.settled, what="the queue settled")
    assert stack.checks(readme) == []  # a pull request touching no recipe gets no check
    edited = _pull_request(stack, "edited", start, readme)  # a title edit asks for nothing
    status, body = await stack.deliver(edited, "pull_request")
    assert (status, body["detail"]) == (200, "pull_request event ignored")

    base = stack.git.commit("recipes", {"README.md": "recipes\n"})
    head = stack.git.commit("recipes", _recipe("good"), branch="gh-readonly-queue/main/pr-7")
    payload = github_payloads.merge_group(
        "checks_requested",
        repository=REPO,
        clone_url=stack.git.clone_url("recipes"),
        base_sha=base,
        head_sha=head,
        installation=INSTALLATION_ID,
    )
    await stack.deliver(payload, "merge_group")
    check = await stack.check_completed(head, "ogdc/recipes/good")
    assert check.conclusion == "neutral"
    assert "Merge queue" in check.output["summary"]
    destroyed = {**payload, "action": "destroyed", "reason": "dequeued"}
    status, _ = await stack.deliver(destroyed, "merge_group")
    assert status == 202
    await wait_for(stack.settled, what="the queue settled")
    assert stack.argo.created == []


@pytest.fixture
async def stack(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> AsyncIterator[Stack]:
    """The pipeline's stack with `/ogdc run` allowed on the test repository."""
    env = {**allowing(stack_env, git_server.url), "OGDC_PR_RUN_REPOSITORIES": REPO}
    async with running_stack(env, github, fake_argo, git_server) as running:
        yield running


async def _comment(
    stack: Stack, body: str, login: str, comment_id: int, at: str | None = None
) -> None:
    payload = github_payloads.issue_comment(
        body,
        repository=REPO,
        clone_url=stack.git.clone_url("recipes"),
        number=7,
        commenter=login,
        installation=INSTALLATION_ID,
        comment_id=comment_id,
        at=at,
    )
    status, _ = await stack.deliver(payload, "issue_comment")
    assert status == 202


def _answered(stack: Stack, comment_id: int) -> Any:
    return stack.github.reactions.get((REPO, comment_id))


async def _replies(stack: Stack, count: int) -> list[str]:
    """The replies on pull request 7 once there are `count` (each comes after its reaction)."""

    def replies() -> list[str]:
        written = list(stack.github.comments.get((REPO, 7), []))
        return written if len(written) >= count else []

    return await wait_for(replies, what=f"{count} replies")


async def test_ogdc_run_comments_run_only_for_a_known_user_who_did_not_write_it(
    stack: Stack,
) -> None:
    await stack.add_user("writer", "outsider")  # known, but the pull request's author
    base, head = _open_branch(stack, _recipe("good"))
    await stack.deliver(_pull_request(stack, "opened", base, head), "pull_request")
    await stack.check_completed(head, "ogdc/recipes/good")

    await _comment(stack, "/ogdc run", "stranger", 1)
    assert await wait_for(lambda: _answered(stack, 1), what="a reaction") == ["confused"]
    await _comment(stack, "/ogdc run", "outsider", 2)
    assert await wait_for(lambda: _answered(stack, 2), what="a reaction") == ["confused"]
    replies = await _replies(stack, 2)
    assert "@stranger is not a known, active ogdc-hooks user" in replies[0]
    assert "an author cannot approve running their own change" in replies[1]
    assert stack.argo.created == []

    await _comment(stack, "/ogdc run recipes/good", "recipe-author", 3)
    assert await wait_for(lambda: _answered(stack, 3), what="a reaction") == ["rocket"]
    [name] = await wait_for(lambda: stack.argo.created, what="a workflow in Argo")
    assert stack.argo.workflow(name)["metadata"]["annotations"]["ogdc/commit"] == head
    assert "Running 1 recipe(s)" in (await _replies(stack, 3))[-1]
    await wait_for(
        lambda: [r for r in stack.checks(head, "ogdc/recipes/good") if r.status == "in_progress"],
        what="the run's own check in progress",
    )

    # A later push is validated only: it needs a comment of its own, written after it.
    written_before = github_payloads.now()
    newer = stack.git.commit(
        "recipes", {"recipes/good/recipe.sh": "echo again\n"}, branch="change-recipes"
    )
    stack.git.set_ref("recipes", "refs/pull/7/head", newer)
    await stack.deliver(_pull_request(stack, "synchronize", base, newer), "pull_request")
    assert (await stack.check_completed(newer, "ogdc/recipes/good")).conclusion == "neutral"
    await wait_for(stack.settled, what="the queue settled")
    assert len(stack.argo.created) == 1
    await _comment(stack, "/ogdc run", "recipe-author", 5, at=written_before)
    assert await wait_for(lambda: _answered(stack, 5), what="a reaction") == ["confused"]
    assert "head moved to" in (await _replies(stack, 4))[-1]
    await _comment(stack, "/ogdc run", "recipe-author", 4)
    await wait_for(lambda: len(stack.argo.created) == 2, what="the newer head in Argo")
    assert (
        stack.argo.workflow(stack.argo.created[1])["metadata"]["annotations"]["ogdc/commit"]
        == newer
    )
