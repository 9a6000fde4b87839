"""GitHub's `pull_request`, `merge_group` and `issue_comment` payloads (GitHub's published
examples, `tests/data/github-webhooks/`) read into neutral events, and which ask for work."""

from __future__ import annotations

import pytest

from ogdc_hooks.forges.base import MergeGroup, PullRequest, RunCommand
from ogdc_hooks.forges.commands import NotACommand, run_command
from ogdc_hooks.forges.github.forge import GitHubForge
from ogdc_hooks.forges.github.proposals import asks_for_work
from ogdc_hooks.settings import Settings
from tests.fakes.github_payloads import example


def _forge() -> GitHubForge:
    return GitHubForge(None, Settings())


def test_a_synchronize_example_reads_as_a_pull_request() -> None:
    payload = example("pull_request-synchronize")
    event = _forge().event_of("d-1", "pull_request", payload)
    assert isinstance(event, PullRequest)
    pull = payload["pull_request"]
    assert (event.number, event.action, event.head_sha) == (2, "synchronize", pull["head"]["sha"])
    assert event.base_sha == pull["base"]["sha"]
    assert event.base_ref == "refs/heads/master"
    assert event.fetch_ref == "refs/pull/2/head"
    assert event.clone_url == payload["repository"]["clone_url"]
    assert event.author == "Codertocat"
    assert event.repo.hint == payload["installation"]["id"]
    assert not event.from_fork and not event.closed


def test_a_fork_is_told_apart_and_closed_is_read() -> None:
    payload = example("pull_request-closed")
    payload["pull_request"]["head"]["repo"]["full_name"] = "someone/Hello-World"
    event = _forge().event_of("d-2", "pull_request", payload)
    assert isinstance(event, PullRequest)
    assert event.from_fork and event.closed
    assert event.clone_url == payload["repository"]["clone_url"]  # never the fork's


@pytest.mark.parametrize(
    ("action", "changes", "asks"),
    [
        ("opened", None, True),
        ("reopened", None, True),
        ("ready_for_review", None, True),
        ("edited", {"title": {"from": "x"}}, False),
        ("edited", {"base": {"ref": {"from": "dev"}, "sha": {"from": "0" * 40}}}, True),
        ("labeled", None, False),
    ],
)
def test_which_pull_request_actions_ask_for_work(
    action: str, changes: dict[str, object] | None, asks: bool
) -> None:
    payload = {**example("pull_request-opened"), "action": action}
    if changes is not None:
        payload["changes"] = changes
    assert asks_for_work("pull_request", payload) is asks


def test_a_merge_group_example_reads_as_a_merge_group() -> None:
    payload = example("merge_group-checks_requested")
    event = _forge().event_of("d-3", "merge_group", payload)
    assert isinstance(event, MergeGroup)
    assert event.head_sha == payload["merge_group"]["head_sha"]
    assert event.base_sha == payload["merge_group"]["base_sha"]
    assert event.head_ref.startswith("refs/heads/gh-readonly-queue/")


def test_only_a_pull_requests_run_comment_is_a_command() -> None:
    payload = example("issue_comment-created")
    assert not asks_for_work("issue_comment", payload)  # the example's issue is no PR
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    assert not asks_for_work("issue_comment", payload)  # its body is no command
    payload["comment"]["body"] = "/ogdc run recipes/seal-tags\n\nplease"
    assert asks_for_work("issue_comment", payload)
    event = _forge().event_of("d-4", "issue_comment", payload)
    assert isinstance(event, RunCommand)
    assert event.recipe == "recipes/seal-tags"
    assert event.number == payload["issue"]["number"]
    assert event.comment_id == payload["comment"]["id"]
    assert event.commenter == payload["comment"]["user"]["login"]


@pytest.mark.parametrize(
    ("body", "recipe"),
    [
        ("/ogdc run", None),
        ("  /ogdc run  \nthanks", None),
        ("/ogdc run seal-tags", "recipes/seal-tags"),
        ("/ogdc run recipes/seal-tags/", "recipes/seal-tags"),
    ],
)
def test_run_commands(body: str, recipe: str | None) -> None:
    assert run_command(body) == recipe


@pytest.mark.parametrize(
    "body", ["/ogdc running", "/ogdc run ../x", "/ogdc run a b", "please /ogdc run", ""]
)
def test_not_run_commands(body: str) -> None:
    with pytest.raises(NotACommand):
        run_command(body)
