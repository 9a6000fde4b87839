"""Forgejo as a forge: intake rules without a server, then the client and the forge against
the fake Forgejo."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ogdc_hooks.cli.startup import summary
from ogdc_hooks.forges.base import CommitReport, RepoRef, RunState
from ogdc_hooks.forges.forgejo.errors import ForgejoRefused, ForgejoUnavailable, classify
from ogdc_hooks.forges.forgejo.forge import ForgejoForge
from ogdc_hooks.forges.forgejo.payloads import on_instance, push_of
from ogdc_hooks.forges.forgejo.statuses import DESCRIPTION_CHARS, status_body
from ogdc_hooks.forges.forgejo.webhooks import ForgejoIntake
from ogdc_hooks.forges.github.webhooks import GitHubIntake
from ogdc_hooks.recipes.problems import Problem
from ogdc_hooks.settings import ForgejoInstance, Secret, Settings
from ogdc_hooks.webhooks.events import WebhookRejected
from tests.fakes.forgejo import FakeForgejo, fake_forgejo, rate_limited, webhook_headers
from tests.fakes.github import Fault

__all__ = ["fake_forgejo"]

CODEBERG = ForgejoInstance("https://codeberg.org", Secret("codeberg-secret"), Secret("t0ken"))
PRIVATE = ForgejoInstance("https://git.example.org/forge", Secret("private-secret"))
REPO = "polar/recipes"
SHA = "c" * 40


def _payload(base: str = "https://codeberg.org", **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "ref": "refs/heads/main",
        "before": "a" * 40,
        "after": "b" * 40,
        "commits": [],
        "total_commits": 9,
        "repository": {
            "full_name": REPO,
            "clone_url": f"{base}/{REPO}.git",
            "html_url": f"{base}/{REPO}",
            "default_branch": "main",
        },
        "pusher": {"login": "Ice-Author", "username": "Ice-Author"},
        "sender": {"login": "someone-else"},
    }
    payload.update(changes)
    return payload


def _deliver(
    intake: ForgejoIntake, payload: dict[str, Any], secret: str, **options: Any
) -> tuple[str, str | None, str]:
    body = json.dumps(payload, indent=2).encode()
    headers = webhook_headers("push", body, secret, "delivery-1", **options)
    check = intake.signature_check(headers)
    check.update(body)
    delivery = intake.parse_verified(headers, body, check.verify())
    return delivery.forge, intake.plan_work(delivery), delivery.id


def test_a_delivery_is_matched_to_the_instance_that_signed_it_and_hosts_it() -> None:
    intake = ForgejoIntake([CODEBERG, PRIVATE])
    assert _deliver(intake, _payload(), "codeberg-secret") == ("codeberg.org", "push", "delivery-1")
    private = _payload("https://git.example.org/forge")
    assert _deliver(intake, private, "private-secret")[0] == "git.example.org"
    assert _deliver(intake, _payload(), "codeberg-secret", gitea=True)[0] == "codeberg.org"


@pytest.mark.parametrize(
    "payload",
    [
        _payload("https://evil.example"),  # signed by codeberg's secret, hosted elsewhere
        _payload("http://codeberg.org"),  # another origin: the scheme differs
        _payload(
            repository={
                "full_name": REPO,
                "clone_url": f"https://codeberg.org/{REPO}.git",
                "html_url": f"https://evil.example/{REPO}",
            }
        ),
    ],
)
def test_a_repository_on_another_origin_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(WebhookRejected) as refused:
        _deliver(ForgejoIntake([CODEBERG]), payload, "codeberg-secret")
    assert refused.value.status == 401


def test_a_secret_of_no_configured_instance_is_refused() -> None:
    with pytest.raises(WebhookRejected) as refused:
        _deliver(ForgejoIntake([CODEBERG]), _payload(), "another-instances-secret")
    assert refused.value.status == 401


def test_the_signature_is_checked_before_the_body_and_must_be_there() -> None:
    intake = ForgejoIntake([CODEBERG])
    body = b"{}"
    unsigned = webhook_headers("push", body, "", "d")  # a webhook without a secret
    with pytest.raises(WebhookRejected, match="give the webhook a secret"):
        intake.signature_check(unsigned)
    only_github = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push"}
    with pytest.raises(WebhookRejected) as refused:
        intake.signature_check(only_github)
    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("event", "changes"),
    [
        ("create", {"ref": "feature", "ref_type": "branch", "sha": "b" * 40}),
        ("delete", {"ref": "feature", "ref_type": "branch", "pusher_type": "user"}),
        ("push", {"ref": "refs/tags/v1"}),
        ("push", {"after": "0" * 40}),
    ],
)
def test_create_delete_tags_and_deletions_are_ignored(event: str, changes: dict[str, Any]) -> None:
    intake = ForgejoIntake([CODEBERG])
    body = json.dumps(_payload(**changes)).encode()
    headers = webhook_headers(event, body, "codeberg-secret", "d")
    check = intake.signature_check(headers)
    check.update(body)
    assert intake.plan_work(intake.parse_verified(headers, body, check.verify())) is None


def test_without_instances_the_route_is_disabled() -> None:
    reason = ForgejoIntake([]).disabled_reason()
    assert reason is not None and "FORGEJO_URL" in reason


def test_a_push_reads_the_pusher_and_says_nothing_of_force() -> None:
    push = push_of(CODEBERG, _payload(), "d")
    assert push.repo == RepoRef("codeberg.org", REPO)
    assert push.pusher == "Ice-Author"
    assert (push.forced, push.created, push.deleted) == (False, False, False)
    new_branch = push_of(CODEBERG, _payload(before="0" * 40), "d")
    assert new_branch.created
    assert push_of(CODEBERG, _payload(pusher=None), "d").pusher == "someone-else"


def test_instance_urls_with_a_path_cover_only_what_is_under_it() -> None:
    assert on_instance("https://git.example.org/forge", "https://git.example.org/forge/o/r.git")
    assert not on_instance("https://git.example.org/forge", "https://git.example.org/o/r.git")
    assert not on_instance("https://git.example.org/forge", "https://git.example.org/forgery/r")


def _report(state: RunState, **changes: Any) -> CommitReport:
    fields: dict[str, Any] = {
        "repository": REPO,
        "commit_sha": SHA,
        "name": "ogdc/recipes/sea-ice",
        "state": state,
        "title": "Recipe is invalid: 1 problem",
        "summary": "summary",
        "details_url": "https://argo.example.org/workflows/qgnet/wf-1",
    }
    fields.update(changes)
    return CommitReport(**fields)


def test_a_status_names_the_first_problem_with_its_file_and_line() -> None:
    problem = Problem("recipes/sea-ice/meta.yml", 6, 13, "input.params[0].type", "'ftp' is bad")
    body = status_body(_report(RunState.INVALID, problems=(problem,)))
    assert body["state"] == "failure"
    assert body["context"] == "ogdc/recipes/sea-ice"
    assert "recipes/sea-ice/meta.yml:6:13" in body["description"]
    assert body["target_url"] == "https://argo.example.org/workflows/qgnet/wf-1"


def test_a_status_description_is_cut_and_redacted() -> None:
    body = status_body(_report(RunState.ERROR, title="x" * 5000 + " ghp_" + "a" * 36))
    assert body["state"] == "error"
    assert len(body["description"]) == DESCRIPTION_CHARS
    leak = status_body(_report(RunState.ERROR, title="token ghp_" + "a" * 36))
    assert "ghp_" not in leak["description"]
    assert "target_url" not in status_body(_report(RunState.QUEUED, details_url="ftp://x"))


def test_a_dry_run_is_a_success_and_a_refusal_a_failure() -> None:
    assert status_body(_report(RunState.DRY_RUN))["state"] == "success"
    assert status_body(_report(RunState.REJECTED))["state"] == "failure"


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (500, {}, ForgejoUnavailable, None),
        (502, {"Retry-After": "12"}, ForgejoUnavailable, 12.0),
        (429, {"Retry-After": "30"}, ForgejoUnavailable, 30.0),
        (429, {}, ForgejoUnavailable, 60.0),
        (401, {}, ForgejoRefused, None),
        (403, {}, ForgejoRefused, None),
        (422, {}, ForgejoRefused, None),
    ],
)
def test_failures_are_classified(
    status: int, headers: dict[str, str], kind: type[Exception], retry_after: float | None
) -> None:
    error = classify("Forgejo at codeberg.org", status, headers, "why", now=0.0)
    assert isinstance(error, kind)
    assert getattr(error, "retry_after", None) == retry_after
    assert "Forgejo at codeberg.org answered" in str(error)


# ---------------------------------------------------------------------------- against the fake


@pytest.fixture
async def forge(fake_forgejo: FakeForgejo) -> AsyncIterator[tuple[ForgejoForge, FakeForgejo]]:
    fake_forgejo.add_repository(REPO, default_branch="trunk")
    token = fake_forgejo.add_token("ogdc-bot")
    fake_forgejo.grant(REPO, "ogdc-bot", "admin")
    instance = ForgejoInstance(fake_forgejo.url, Secret("s"), Secret(token))
    async with aiohttp.ClientSession() as session:
        yield ForgejoForge(instance, session), fake_forgejo


async def test_the_forge_reads_the_default_branch_and_permissions(
    forge: tuple[ForgejoForge, FakeForgejo],
) -> None:
    forgejo, fake = forge
    repo = RepoRef(forgejo.host, REPO)
    assert await forgejo.default_branch(repo) == "trunk"
    fake.grant(REPO, "writer", "write")
    fake.grant(REPO, "reader", "read")
    assert await forgejo.may_write(repo, "writer")
    assert not await forgejo.may_write(repo, "reader")
    assert not await forgejo.may_write(repo, "nobody-at-all")


async def test_the_forge_reports_a_status_the_fake_accepts(
    forge: tuple[ForgejoForge, FakeForgejo],
) -> None:
    forgejo, fake = forge
    sha = fake.git.commit(REPO, {"a": "b"}, branch="trunk")
    report = _report(RunState.SUCCEEDED, commit_sha=sha, title="Workflow succeeded")
    assert await forgejo.report(report, None, RepoRef(forgejo.host, REPO)) is None
    status = fake.latest(REPO, sha, "ogdc/recipes/sea-ice")
    assert status is not None and status.state == "success"
    [request] = fake.requests_to("POST", "/statuses/")
    assert request.headers["Authorization"].startswith("token ")


async def test_a_rate_limit_is_honoured_before_calling_again(
    forge: tuple[ForgejoForge, FakeForgejo],
) -> None:
    forgejo, fake = forge
    fake.inject(rate_limited(120))
    repo = RepoRef(forgejo.host, REPO)
    with pytest.raises(ForgejoUnavailable) as limited:
        await forgejo.default_branch(repo)
    assert limited.value.retry_after == 120.0
    with pytest.raises(ForgejoUnavailable, match="asked us to wait"):
        await forgejo.default_branch(repo)
    assert len(fake.requests) == 1  # the second call never left the process


async def test_server_errors_are_transient_and_never_carry_the_token(
    forge: tuple[ForgejoForge, FakeForgejo],
) -> None:
    forgejo, fake = forge
    token = forgejo.instance.token
    assert token is not None
    fake.inject(Fault(500, {"message": f"boom {token.reveal()}"}))
    with pytest.raises(ForgejoUnavailable) as failed:
        await forgejo.default_branch(RepoRef(forgejo.host, REPO))
    assert token.reveal() not in str(failed.value)
    fake.inject(Fault(302, None, {"Location": "https://elsewhere.example/"}))
    with pytest.raises(ForgejoRefused, match="not followed"):
        await forgejo.default_branch(RepoRef(forgejo.host, REPO))


async def test_a_report_on_a_missing_commit_is_retried_not_dropped(
    forge: tuple[ForgejoForge, FakeForgejo],
) -> None:
    """Forgejo answers 500 for a commit it does not have."""
    forgejo, _ = forge
    with pytest.raises(ForgejoUnavailable):
        await forgejo.report(_report(RunState.QUEUED), None, RepoRef(forgejo.host, REPO))


def test_the_signature_is_forgejos_hex_hmac() -> None:
    body = b'{"a": 1}'
    headers = webhook_headers("push", body, "k", "d")
    assert headers["X-Forgejo-Signature"] == hmac.new(b"k", body, hashlib.sha256).hexdigest()


def test_the_github_intake_refuses_a_forgejo_delivery_even_with_githubs_secret() -> None:
    """A secret shared by both: the payload's clone URL is Forgejo's, never GitHub's token."""
    intake = GitHubIntake(Settings(github_webhook_secret=Secret("shared")))
    body = json.dumps(_payload()).encode()
    headers = webhook_headers("push", body, "shared", "d")
    check = intake.signature_check(headers)
    check.update(body)
    with pytest.raises(WebhookRejected) as refused:
        intake.parse_verified(headers, body, check.verify())
    assert refused.value.status == 400
    assert "/webhooks/forgejo" in refused.value.detail


def test_the_start_summary_names_each_instance_and_what_it_reports() -> None:
    settings = Settings(forgejo_instances=(CODEBERG, PRIVATE))
    line = summary(settings, None)["forgejo"]
    assert line.startswith("on at /webhooks/forgejo for codeberg.org (statuses)")
    assert "git.example.org (no FORGEJO_TOKEN: nothing reported)" in line
    assert "forgejo" not in summary(Settings(), None)
