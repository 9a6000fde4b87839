"""Pushes to a recipe repository on Forgejo, end to end: the real service, PostgreSQL and git
over HTTP, the fake Forgejo (API, statuses and the repository on one origin) and the fake Argo.
What the GitHub pipeline tests show, shown again through the same core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.argo import FakeArgo
from tests.fakes.forgejo import FakeForgejo, Status, WebhookAnswer
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import META, SCRIPT, Stack, running_stack, wait_for
from tests.support.gitserver import GitServer
from tests.support.service import Service

REPO = "polar/recipes"
SECRET = "forgejo-webhook-secret-for-tests"
PUSHER = "ice-author"  # a Forgejo login
ZERO = "0" * 40


@dataclass
class ForgejoStack:
    stack: Stack
    forgejo: FakeForgejo

    @property
    def route(self) -> str:
        return self.stack.service.url + "/webhooks/forgejo"

    async def push(
        self,
        before: str,
        after: str,
        *,
        pusher: str = PUSHER,
        branch: str = "main",
        delivery: str | None = None,
    ) -> WebhookAnswer:
        payload = self.forgejo.push_payload(
            REPO, before=before, after=after, pusher=pusher, branch=branch
        )
        return await self.forgejo.send_webhook(
            self.route, SECRET, "push", payload, delivery=delivery
        )

    def commit(self, meta: str = META, **options: Any) -> str:
        files = {"recipes/sea-ice/meta.yml": meta, "recipes/sea-ice/recipe.sh": SCRIPT}
        return self.forgejo.git.commit(REPO, files, **options)

    def base(self) -> str:
        return self.forgejo.git.commit(REPO, {"README.md": "recipes\n"})

    async def final_status(self, sha: str, context: str, within: float = 40.0) -> Status:
        def done() -> Status | None:
            status = self.forgejo.latest(REPO, sha, context)
            return status if status is not None and status.state != "pending" else None

        return await wait_for(done, within=within, what=f"status {context} on {sha[:8]} final")


@pytest.fixture
async def forgejo(tmp_path: Path) -> AsyncIterator[FakeForgejo]:
    fake = FakeForgejo(tmp_path / "forgejo")
    await fake.start()
    fake.add_repository(REPO)
    fake.grant(REPO, "ogdc-bot", "admin")
    yield fake
    await fake.stop()


@pytest.fixture
async def fj(
    stack_env: dict[str, str],
    github: FakeGitHub,
    fake_argo: FakeArgo,
    git_server: GitServer,
    forgejo: FakeForgejo,
) -> AsyncIterator[ForgejoStack]:
    env = {
        **stack_env,
        "FORGEJO_URL": forgejo.url,
        "FORGEJO_TOKEN": forgejo.add_token("ogdc-bot"),
        "FORGEJO_WEBHOOK_SECRET": SECRET,
        "OGDC_SUBMIT_ALLOWED_HOSTS": forgejo.url.split("://")[1],  # a loopback test server
        "OGDC_CREDENTIAL_REPOSITORIES": REPO,  # /submit may borrow the instance's token here
    }
    async with running_stack(env, github, fake_argo, git_server) as stack:
        await stack.add_forge_user("ice", forgejo.url.split("://")[1], PUSHER)
        yield ForgejoStack(stack, forgejo)


async def test_a_known_pusher_goes_green(fj: ForgejoStack) -> None:
    before = fj.base()
    after = fj.commit()
    answer = await fj.push(before, after)
    assert (answer.status, answer.body["detail"]) == (202, "accepted")
    [name] = await wait_for(lambda: fj.stack.argo.created, what="a workflow in Argo")

    def running() -> object:
        status = fj.forgejo.latest(REPO, after, "ogdc/recipes/sea-ice")
        return status is not None and status.target_url.endswith(name)

    await wait_for(running, what="a pending status linking to the workflow")
    status = fj.forgejo.latest(REPO, after, "ogdc/recipes/sea-ice")
    assert status is not None and status.state == "pending"
    assert status.target_url == f"https://argo.example.org/workflows/qgnet/{name}"
    fj.stack.argo.set_phase(name, "Running")
    fj.stack.argo.set_phase(name, "Succeeded")
    done = await fj.final_status(after, "ogdc/recipes/sea-ice")
    assert done.state == "success"
    assert {s.creator for s in fj.forgejo.status_history(REPO, after)} == {"ogdc-bot"}
    # the clone came from the Forgejo origin, with the token
    assert any(authorized for _, _, authorized in fj.forgejo.git_requests)
    [run] = await fj.stack.runs(commit=after)
    assert run["repository"] == REPO


async def test_a_failed_workflow_goes_red(fj: ForgejoStack) -> None:
    before = fj.base()
    after = fj.commit()
    await fj.push(before, after)
    [name] = await wait_for(lambda: fj.stack.argo.created, what="a workflow")
    fj.stack.argo.set_phase(
        name, "Failed", message="child failed", failed_nodes={"step-0": "exit code 2"}
    )
    done = await fj.final_status(after, "ogdc/recipes/sea-ice")
    assert done.state == "failure"
    # The status carries the failure's classification (README "When a run fails").
    assert done.description == "Workflow failed: exit code 2 in step `step-0`"


async def test_an_invalid_recipe_fails_naming_the_file_and_line(fj: ForgejoStack) -> None:
    before = fj.base()
    after = fj.commit(META.replace("type: url", "type: ftp"))
    await fj.push(before, after)
    done = await fj.final_status(after, "ogdc/recipes/sea-ice")
    assert done.state == "failure"
    assert "recipes/sea-ice/meta.yml:6" in done.description
    assert "'ftp'" in done.description
    assert fj.stack.argo.created == []


async def test_an_unknown_pusher_gets_one_failing_status_and_nothing_runs(
    fj: ForgejoStack,
) -> None:
    before = fj.base()
    after = fj.commit()
    await fj.push(before, after, pusher="stranger")
    done = await fj.final_status(after, "ogdc")
    assert done.state == "failure"
    assert [s.context for s in fj.forgejo.status_history(REPO, after)] == ["ogdc"]
    [run] = await fj.stack.runs(commit=after)
    assert "@stranger" in str(run["message"])
    assert fj.stack.argo.created == []


async def test_a_redelivery_is_acknowledged_and_not_processed_again(fj: ForgejoStack) -> None:
    before = fj.base()
    after = fj.commit()
    assert (await fj.push(before, after, delivery="forgejo-delivery-1")).status == 202
    await wait_for(lambda: fj.stack.argo.created, what="a workflow")
    again = await fj.push(before, after, delivery="forgejo-delivery-1")
    assert (again.status, again.body["detail"]) == (200, "already received")
    assert len(await fj.stack.runs(commit=after)) == 1
    assert len(fj.stack.argo.created) == 1


async def test_another_branch_is_a_dry_run(fj: ForgejoStack) -> None:
    base = fj.base()
    after = fj.commit(branch="feature", parent=base)
    await fj.push(ZERO, after, branch="feature")
    done = await fj.final_status(after, "ogdc/recipes/sea-ice")
    assert done.state == "success"
    assert done.description.startswith("Dry run")
    assert fj.stack.argo.created == []
    [run] = await fj.stack.runs(commit=after)
    assert run["state"] == "dry_run"


async def test_create_and_delete_events_are_acknowledged_and_ignored(fj: ForgejoStack) -> None:
    sha = fj.base()
    for event, payload in (
        ("create", fj.forgejo.ref_payload(REPO, "feature", sha=sha, sender=PUSHER)),
        ("delete", fj.forgejo.ref_payload(REPO, "feature", sender=PUSHER)),
    ):
        answer = await fj.forgejo.send_webhook(fj.route, SECRET, event, payload)
        assert (answer.status, answer.body["detail"]) == (200, f"{event} event ignored")
    assert await fj.stack.settled()


async def test_a_bad_signature_is_refused_and_nothing_is_stored(fj: ForgejoStack) -> None:
    before = fj.base()
    after = fj.commit()
    payload = fj.forgejo.push_payload(REPO, before=before, after=after, pusher=PUSHER)
    answer = await fj.forgejo.send_webhook(fj.route, "not-the-secret", "push", payload)
    assert answer.status == 401
    unsigned = await fj.forgejo.send_webhook(fj.route, "", "push", payload)
    assert unsigned.status == 401
    assert await fj.stack.runs(commit=after) == []


async def test_a_delivery_from_an_unconfigured_instance_is_refused(
    fj: ForgejoStack, tmp_path: Path
) -> None:
    other = FakeForgejo(tmp_path / "other")
    await other.start()
    try:
        other.add_repository(REPO)
        before = other.git.commit(REPO, {"README.md": "x\n"})
        after = other.git.commit(REPO, {"recipes/sea-ice/meta.yml": META})
        payload = other.push_payload(REPO, before=before, after=after, pusher=PUSHER)
        # its own secret: not a configured instance's
        assert (await other.send_webhook(fj.route, "other-secret", "push", payload)).status == 401
        # even signed with the configured instance's secret, its clone URL is elsewhere
        forged = await other.send_webhook(fj.route, SECRET, "push", payload)
        assert forged.status == 401
        assert other.git_requests == []  # never cloned, never given the token
    finally:
        await other.stop()


async def test_a_forgejo_delivery_to_the_github_route_is_refused(fj: ForgejoStack) -> None:
    before = fj.base()
    after = fj.commit()
    payload = fj.forgejo.push_payload(REPO, before=before, after=after, pusher=PUSHER)
    github_route = fj.stack.service.url + "/webhooks/github"
    # Forgejo also sends X-GitHub-Event and X-Hub-Signature-256, signed with its own secret
    assert (await fj.forgejo.send_webhook(github_route, SECRET, "push", payload)).status == 401
    assert await fj.stack.runs(commit=after) == []


async def test_kill_9_during_a_push_then_restart_finishes_it(fj: ForgejoStack) -> None:
    before = fj.base()
    after = fj.commit()
    fj.forgejo.delay_git(1, 30)  # the first git request hangs: the push job is mid-clone
    assert (await fj.push(before, after)).status == 202
    await wait_for(lambda: fj.forgejo.git_requests, what="the clone to start")
    fj.stack.service.kill()
    restarted = Service(fj.stack.service.env)
    await asyncio.to_thread(restarted.start)
    fj.stack.service = restarted
    try:
        [name] = await wait_for(
            lambda: fj.stack.argo.created, within=60, what="the workflow after the restart"
        )
        fj.stack.argo.set_phase(name, "Succeeded")
        done = await fj.final_status(after, "ogdc/recipes/sea-ice", within=60)
        assert done.state == "success"
        assert fj.stack.argo.created == [name]
    finally:
        await asyncio.to_thread(restarted.stop)


async def test_an_admin_submits_a_recipe_of_the_forgejo_repository(fj: ForgejoStack) -> None:
    """`forgejo://ORG:REPO@REF/PATH`: cloned from the instance with its token (private), as
    OGDC_CREDENTIAL_REPOSITORIES lists the repository."""
    fj.base()
    sha = fj.commit()
    status, answer = await fj.stack.api(
        "POST",
        "/submit",
        json={"recipe_path": f"forgejo://{REPO.replace('/', ':')}@main/recipes/sea-ice"},
    )
    assert status == 202, answer
    assert answer["recipe_workflow_name"] in fj.stack.argo.created
    [run] = await fj.stack.runs(commit=sha)
    assert (run["repository"], run["trigger"]) == (REPO, "api")
