"""Webhook payloads as GitHub sends them, made from GitHub's published examples (vendored in
`tests/data/github-webhooks/`, from octokit/webhooks, MIT) with this test's repository, commits
and people put in."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).parents[1] / "data" / "github-webhooks"


@cache
def _example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / f"{name}.json").read_text()))


def example(name: str) -> dict[str, Any]:
    """A fresh copy of a vendored example, e.g. `pull_request-opened`."""
    return copy.deepcopy(_example(name))


def now() -> str:
    """The time as GitHub writes it in payloads (`updated_at`, `created_at`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _repository(payload: dict[str, Any], full_name: str, clone_url: str) -> dict[str, Any]:
    repository = payload["repository"]
    owner, name = full_name.split("/")
    repository.update(full_name=full_name, name=name, clone_url=clone_url, default_branch="main")
    repository["owner"]["login"] = owner
    return repository


def pull_request(
    action: str,
    *,
    repository: str,
    clone_url: str,
    number: int,
    base_sha: str,
    head_sha: str,
    author: str,
    installation: int,
    head_repository: str | None = None,
    head_clone_url: str | None = None,
    head_ref: str = "change-recipes",
    at: str | None = None,
) -> dict[str, Any]:
    """`pull_request` (`pull_request-opened` with the action and fields set); a fork's head
    when `head_repository` is another repository."""
    payload = example("pull_request-opened")
    payload.update(action=action, number=number, installation={"id": installation})
    base_repo = _repository(payload, repository, clone_url)
    pull = payload["pull_request"]
    state = "closed" if action == "closed" else "open"
    pull.update(number=number, state=state, draft=False, updated_at=at or now())
    pull["user"]["login"] = author
    pull["base"].update(ref="main", sha=base_sha, repo=copy.deepcopy(base_repo))
    head_repo = copy.deepcopy(base_repo)
    if head_repository is not None:
        owner, name = head_repository.split("/")
        head_repo.update(full_name=head_repository, name=name, clone_url=head_clone_url, fork=True)
        head_repo["owner"] = {**head_repo["owner"], "login": owner}
    pull["head"].update(ref=head_ref, sha=head_sha, repo=head_repo)
    payload["sender"]["login"] = author
    return payload


def merge_group(
    action: str, *, repository: str, clone_url: str, base_sha: str, head_sha: str, installation: int
) -> dict[str, Any]:
    payload = example("merge_group-checks_requested")
    payload.update(action=action, installation={"id": installation})
    _repository(payload, repository, clone_url)
    group = payload["merge_group"]
    group.update(
        head_sha=head_sha,
        base_sha=base_sha,
        head_ref=f"refs/heads/gh-readonly-queue/main/pr-7-{base_sha}",
    )
    group["head_commit"]["id"] = head_sha
    if action == "destroyed":
        payload["reason"] = "dequeued"
    return payload


def issue_comment(
    body: str,
    *,
    repository: str,
    clone_url: str,
    number: int,
    commenter: str,
    installation: int,
    comment_id: int,
    at: str | None = None,
) -> dict[str, Any]:
    """`issue_comment.created` on a pull request (the example's issue made one)."""
    payload = example("issue_comment-created")
    payload["installation"] = {"id": installation}
    _repository(payload, repository, clone_url)
    issue = payload["issue"]
    issue["number"] = number
    issue["pull_request"] = {
        "url": f"https://api.github.com/repos/{repository}/pulls/{number}",
        "html_url": f"https://github.com/{repository}/pull/{number}",
    }
    comment = payload["comment"]
    comment.update(id=comment_id, body=body, created_at=at or now(), updated_at=at or now())
    comment["user"]["login"] = commenter
    payload["sender"]["login"] = commenter
    return payload


def check_run_rerequested(
    *,
    repository: str,
    clone_url: str,
    head_sha: str,
    external_id: str,
    sender: str,
    installation: int,
) -> dict[str, Any]:
    payload = example("check_run-rerequested")
    payload["installation"] = {"id": installation}
    _repository(payload, repository, clone_url)
    payload["check_run"].update(head_sha=head_sha, external_id=external_id)
    payload["sender"]["login"] = sender
    return payload
