"""Cancelling, retrying and re-running runs end to end: a newer push superseding a running
run, the check run's Cancel and Retry buttons, and `POST /runs/{id}/cancel|retry|rerun`
with the CLI."""

from __future__ import annotations

import json
from typing import Any

from ogdc_hooks.pipeline.supersede import keeps_superseded
from ogdc_hooks.settings import load_settings
from tests.fakes.github import CheckRun
from tests.pipeline.conftest import (
    INSTALLATION_ID,
    META,
    REPO,
    SCRIPT,
    Stack,
    push_payload,
    wait_for,
)
from tests.pipeline.test_cli_runs import cli

CHECK = "ogdc/recipes/sea-ice"


def _commit(stack: Stack, script: str = SCRIPT, recipe: str = "sea-ice") -> str:
    files = {f"recipes/{recipe}/meta.yml": META, f"recipes/{recipe}/recipe.sh": script}
    return stack.git.commit("recipes", files)


async def _push(stack: Stack, before: str, after: str) -> None:
    status, _ = await stack.deliver(push_payload(stack.git, before=before, after=after))
    assert status == 202


async def _workflow(stack: Stack, count: int) -> str:
    created = await wait_for(
        lambda: stack.argo.created if len(stack.argo.created) >= count else None,
        what=f"workflow number {count}",
    )
    return str(created[count - 1])


async def _stopped(stack: Stack, name: str) -> None:
    await wait_for(
        lambda: stack.argo.workflow(name)["spec"].get("shutdown") == "Stop",
        what=f"workflow {name} stopped",
    )


async def _latest(stack: Stack, sha: str, want: Any, what: str) -> CheckRun:
    """The newest check run of the recipe on the commit, once `want(it)` holds."""

    def newest() -> CheckRun | None:
        runs = sorted(stack.checks(sha, CHECK), key=lambda run: run.id)
        return runs[-1] if runs and want(runs[-1]) else None

    return await wait_for(newest, what=what)


def _press(check: CheckRun, identifier: str, login: str) -> dict[str, Any]:
    """`check_run.requested_action` as GitHub sends it when a button is pressed."""
    return {
        "action": "requested_action",
        "check_run": {
            "id": check.id,
            "name": check.name,
            "head_sha": check.head_sha,
            "external_id": check.external_id,
            "status": check.status,
            "conclusion": check.conclusion,
        },
        "requested_action": {"identifier": identifier},
        "repository": {"full_name": REPO},
        "sender": {"login": login, "id": 7, "type": "User"},
        "installation": {"id": INSTALLATION_ID},
    }


def test_the_superseding_settings() -> None:
    assert not keeps_superseded(load_settings({}), "qgnet/recipes")
    kept = load_settings({"OGDC_KEEP_SUPERSEDED_REPOSITORIES": "QGnet/Recipes, other/*"})
    assert keeps_superseded(kept, "qgnet/recipes") and keeps_superseded(kept, "other/x")
    assert not keeps_superseded(kept, "qgnet/else")
    assert keeps_superseded(load_settings({"OGDC_CANCEL_SUPERSEDED": "false"}), "qgnet/recipes")


async def test_a_newer_push_cancels_the_older_run_but_a_late_older_push_does_not(
    stack: Stack,
) -> None:
    base = stack.git.commit("recipes", {"README.md": "recipes\n"})
    first = _commit(stack)
    await _push(stack, base, first)
    stack.argo.set_phase(await _workflow(stack, 1), "Running")
    await _latest(stack, first, lambda c: c.status == "in_progress", "the first run running")

    second = _commit(stack, SCRIPT + "echo two\n")
    await _push(stack, first, second)
    cancelled = await stack.check_completed(first, CHECK)
    assert cancelled.conclusion == "cancelled"
    assert f"Superseded by {second[:7]}" in cancelled.output["summary"]
    assert f"/{REPO}/commit/{second}" in cancelled.output["summary"]
    assert cancelled.actions == []  # no Cancel button left on an ended run
    await _stopped(stack, stack.argo.created[0])

    # The fourth commit's push arrives before the third's: the late third push is older
    # than the fourth run, which must keep running; it does supersede the second run.
    third = _commit(stack, SCRIPT + "echo three\n")
    fourth = _commit(stack, SCRIPT + "echo four\n")
    await _push(stack, third, fourth)
    newest = await _workflow(stack, 3)
    stack.argo.set_phase(newest, "Running")
    await _push(stack, second, third)
    assert (await stack.check_completed(second, CHECK)).conclusion == "cancelled"
    await _workflow(stack, 4)
    await wait_for(stack.settled, what="every job done")
    [run] = await stack.runs(commit=fourth)
    assert run["state"] == "running"
    assert "shutdown" not in stack.argo.workflow(newest)["spec"]


async def test_retry_and_cancel_buttons_act_for_known_users_only(stack: Stack) -> None:
    base = stack.git.commit("recipes", {"README.md": "recipes\n"})
    sha = _commit(stack)
    await _push(stack, base, sha)
    name = await _workflow(stack, 1)
    partitions = {"partition-0": "Succeeded", "partition-1": "Failed", "partition-2": "Succeeded"}
    ids = stack.argo.set_nodes(name, partitions)
    stack.argo.set_phase(name, "Failed", message="child 'partition-1' failed")
    failed = await stack.check_completed(sha, CHECK)
    assert [a["identifier"] for a in failed.actions] == ["retry"]
    succeeded = stack.argo.workflow(name)["status"]["nodes"]

    await stack.deliver(_press(failed, "retry", "stranger"), event="check_run")
    noted = await _latest(
        stack,
        sha,
        lambda c: "Not done: Retry failed steps by @stranger" in c.output["summary"],
        "the refusal on the check",
    )
    assert "not a known, active ogdc-hooks user" in noted.output["summary"]
    assert noted.conclusion == "failure"
    assert stack.argo.count("PUT", f"/api/v1/workflows/qgnet/{name}/retry") == 0

    await stack.deliver(_press(failed, "retry", "recipe-author"), event="check_run")
    retried = await _latest(stack, sha, lambda c: c.status == "in_progress", "the retry running")
    assert retried.id != failed.id and retried.external_id == failed.external_id
    assert [a["identifier"] for a in retried.actions] == ["cancel"]
    [sent] = [r for r in stack.argo.requests if r.path.endswith(f"{name}/retry")]
    assert sent.body["restartSuccessful"] is False
    nodes = stack.argo.workflow(name)["status"]["nodes"]
    assert ids["partition-1"] not in nodes  # only the failed partition runs again
    for kept in ("partition-0", "partition-2"):
        assert nodes[ids[kept]] == succeeded[ids[kept]]

    await stack.deliver(_press(retried, "cancel", "stranger"), event="check_run")
    await _latest(
        stack,
        sha,
        lambda c: "Not done: Cancel by @stranger" in c.output["summary"],
        "the cancel refusal",
    )
    assert "shutdown" not in stack.argo.workflow(name)["spec"]
    await stack.deliver(_press(retried, "cancel", "recipe-author"), event="check_run")
    ended = await _latest(stack, sha, lambda c: c.status == "completed", "the cancel")
    assert ended.conclusion == "cancelled"
    assert "Cancelled by @recipe-author" in ended.output["summary"]
    await _stopped(stack, name)
    assert [c.conclusion for c in sorted(stack.checks(sha, CHECK), key=lambda c: c.id)] == [
        "failure",
        "cancelled",
    ]


async def _token(stack: Stack, user: str) -> str:
    form = {"username": user, "password": "a-long-password"}
    async with stack.session.post(stack.service.url + "/token", data=form) as answer:
        return str((await answer.json())["access_token"])


async def test_the_api_and_cli_cancel_and_retry_for_the_requester_or_an_admin(
    stack: Stack,
) -> None:
    base = stack.git.commit("recipes", {"README.md": "recipes\n"})
    _commit(stack, recipe="other")
    sha = _commit(stack)
    await _push(stack, base, sha)
    await _workflow(stack, 2)

    async def submitted() -> dict[str, Any] | None:
        found = {run["recipe"]: run for run in await stack.runs(commit=sha)}
        return found if all(run["workflow_name"] for run in found.values()) else None

    runs = await wait_for(submitted, what="both runs submitted")
    running, failing = runs["recipes/sea-ice"], runs["recipes/other"]
    await stack.add_user("bystander", "bystander-login")
    headers = {"Authorization": f"Bearer {await _token(stack, 'bystander')}"}
    path = f"{stack.service.url}/runs/{running['id']}"
    async with stack.session.post(path + "/cancel", headers=headers) as answer:
        assert answer.status == 403
        assert "Only the run's requester (author) or an admin" in (await answer.json())["detail"]
    status, body = await stack.api("POST", f"/runs/{running['id']}/retry")
    assert status == 409 and "cancel it first, or wait for it to end" in body["detail"]

    done = await cli(stack, "runs", "cancel", running["id"])
    assert done.returncode == 0, done.stderr
    assert "cancelled" in done.stdout and "Cancelled by admin" in done.stdout
    await _stopped(stack, running["workflow_name"])
    again = await cli(stack, "runs", "cancel", running["id"])
    assert again.returncode != 0 and "nothing to cancel" in again.stderr

    stack.argo.set_phase(failing["workflow_name"], "Failed", message="child failed")
    await wait_for(
        lambda: stack.checks(sha, "ogdc/recipes/other")[-1].status == "completed",
        what="the other run failed",
    )
    as_author = {"OGDC_API_USERNAME": "author", "OGDC_API_PASSWORD": "a-long-password"}
    done = await cli(stack, "runs", "retry", failing["id"], "--json", **as_author)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] in ("submitted", "running")
    assert stack.argo.workflow(failing["workflow_name"])["status"]["phase"] == "Running"


async def test_the_api_and_cli_rerun_a_finished_run_as_a_new_attempt(stack: Stack) -> None:
    base = stack.git.commit("recipes", {"README.md": "recipes\n"})
    sha = _commit(stack)
    await _push(stack, base, sha)
    name = await _workflow(stack, 1)
    (run,) = await wait_for(lambda: stack.runs(commit=sha), what="the run")
    status, body = await stack.api("POST", f"/runs/{run['id']}/rerun")
    assert status == 409 and "has not ended: cancel it first" in body["detail"]

    stack.argo.set_phase(name, "Succeeded")
    await _latest(stack, sha, lambda check: check.conclusion == "success", "the run succeeded")
    await stack.add_user("bystander", "bystander-login")
    headers = {"Authorization": f"Bearer {await _token(stack, 'bystander')}"}
    async with stack.session.post(
        f"{stack.service.url}/runs/{run['id']}/rerun", headers=headers
    ) as answer:
        assert answer.status == 403

    as_author = {"OGDC_API_USERNAME": "author", "OGDC_API_PASSWORD": "a-long-password"}
    done = await cli(stack, "runs", "rerun", run["id"], "--json", **as_author)
    assert done.returncode == 0, done.stderr
    new = json.loads(done.stdout)
    assert new["id"] != run["id"] and new["attempt"] == run["attempt"] + 1
    assert new["recipe"] == run["recipe"] and new["commit_sha"] == sha
    assert new["requested_by"] == "author"
    await _workflow(stack, 2)  # the new attempt is validated, rendered and submitted again
    status, original = await stack.api("GET", f"/runs/{run['id']}")
    assert status == 200 and original["state"] == "succeeded"

    again = await cli(stack, "runs", "rerun", run["id"])
    assert again.returncode != 0 and "is not the newest attempt" in again.stderr
