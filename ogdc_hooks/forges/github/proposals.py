"""GitHub's pull request, merge queue and comment payloads read into neutral events (`pull_request`,
`merge_group`, `issue_comment`); pure. Field names as in GitHub's webhook reference,
https://docs.github.com/en/webhooks/webhook-events-and-payloads."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ogdc_hooks.forges.base import MergeGroup, PullRequest, RepoRef, RunCommand
from ogdc_hooks.forges.commands import NotACommand, run_command
from ogdc_hooks.redact import without_credentials

# Actions that change what a pull request would run (edited: only when its base changed).
PULL_REQUEST_ACTIONS = frozenset(
    {"opened", "synchronize", "reopened", "ready_for_review", "edited", "closed"}
)
MERGE_GROUP_ACTIONS = frozenset({"checks_requested", "destroyed"})


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _login(value: Any) -> str | None:
    login = _mapping(value).get("login")
    return login if isinstance(login, str) and login else None


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time as GitHub writes them ("2019-05-15T15:20:33Z"), None when it is not."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def repo_ref(host: str, payload: Mapping[str, Any]) -> RepoRef:
    hint = _mapping(payload.get("installation")).get("id")
    return RepoRef(
        host,
        str(_mapping(payload.get("repository")).get("full_name") or ""),
        hint if isinstance(hint, int) else None,
    )


def asks_for_work(event: str, payload: Mapping[str, Any]) -> bool:
    """Whether a `pull_request`, `merge_group` or `issue_comment` delivery asks for a job."""
    action = payload.get("action")
    if event == "pull_request":
        if action == "edited":  # a title or body edit changes nothing we run
            return "base" in _mapping(payload.get("changes"))
        return action in PULL_REQUEST_ACTIONS
    if event == "merge_group":
        return action in MERGE_GROUP_ACTIONS
    if event == "issue_comment":
        return action == "created" and is_run_comment(payload)
    return False


def is_run_comment(payload: Mapping[str, Any]) -> bool:
    """A new comment on a pull request (an issue with `pull_request`) starting `/ogdc run`."""
    if not _mapping(payload.get("issue")).get("pull_request"):
        return False
    body = _mapping(payload.get("comment")).get("body")
    return isinstance(body, str) and body.lstrip().startswith("/ogdc run")


def pull_request_of(host: str, payload: Mapping[str, Any], delivery_id: str) -> PullRequest:
    """The neutral pull request (KeyError when the payload lacks what every one has)."""
    pull = payload["pull_request"]
    base, head = pull["base"], pull["head"]
    number = int(payload.get("number") or pull["number"])
    head_repo = _mapping(head.get("repo")).get("full_name")  # None: the fork was deleted
    return PullRequest(
        repo=repo_ref(host, payload),
        number=number,
        action=str(payload["action"]),
        base_ref=f"refs/heads/{base['ref']}",
        base_sha=base["sha"],
        head_sha=head["sha"],
        head_repo=head_repo if isinstance(head_repo, str) else None,
        clone_url=without_credentials(payload["repository"]["clone_url"]),
        fetch_ref=f"refs/pull/{number}/head",  # GitHub keeps every head here, forks' too
        author=_login(pull.get("user")),
        delivery_id=delivery_id,
        at=_time(pull.get("updated_at")),
    )


def merge_group_of(host: str, payload: Mapping[str, Any], delivery_id: str) -> MergeGroup:
    group = payload["merge_group"]
    return MergeGroup(
        repo=repo_ref(host, payload),
        action=str(payload["action"]),
        base_sha=group["base_sha"],
        head_sha=group["head_sha"],
        head_ref=group["head_ref"],
        clone_url=without_credentials(payload["repository"]["clone_url"]),
        delivery_id=delivery_id,
    )


def run_command_of(host: str, payload: Mapping[str, Any], delivery_id: str) -> RunCommand | None:
    """The `/ogdc run` a comment asks for; None when its first line is not that command."""
    comment = payload["comment"]
    try:
        recipe = run_command(str(comment.get("body") or ""))
    except NotACommand:
        return None
    return RunCommand(
        repo=repo_ref(host, payload),
        number=int(payload["issue"]["number"]),
        commenter=_login(comment.get("user")) or _login(payload.get("sender")),
        comment_id=int(comment["id"]),
        recipe=recipe,
        delivery_id=delivery_id,
        at=_time(comment.get("created_at")),
    )
