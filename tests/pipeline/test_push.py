"""Pushes to a recipe repository, end to end, as a recipe author would see them on GitHub."""

from __future__ import annotations

import uuid

from tests.pipeline.conftest import META, REPO, SCRIPT, Stack, push_payload, wait_for

ZERO = "0" * 40


def _base(stack: Stack) -> str:
    return stack.git.commit("recipes", {"README.md": "recipes\n"})


def _recipe_commit(stack: Stack, meta: str = META, name: str = "sea-ice") -> str:
    return stack.git.commit(
        "recipes", {f"recipes/{name}/meta.yml": meta, f"recipes/{name}/recipe.sh": SCRIPT}
    )


async def test_known_pusher_goes_green(stack: Stack) -> None:
    before = _base(stack)
    after = _recipe_commit(stack)
    status, body = await stack.deliver(push_payload(stack.git, before=before, after=after))
    assert (status, body["detail"]) == (202, "accepted")

    name = await wait_for(lambda: stack.argo.created, what="a workflow in Argo")
    assert len(name) == 1
    workflow = stack.argo.workflow(name[0])
    labels = workflow["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "ogdc-hooks"
    run_id = labels["ogdc/run-id"]

    def in_progress() -> object:
        return [r for r in stack.checks(after, "ogdc/recipes/sea-ice") if r.status == "in_progress"]

    await wait_for(in_progress, what="the check in progress")
    check = stack.checks(after, "ogdc/recipes/sea-ice")[0]
    assert check.details_url == f"https://argo.example.org/workflows/qgnet/{name[0]}"
    assert check.external_id == str(uuid.UUID(hex=run_id))

    stack.argo.set_phase(name[0], "Running")
    stack.argo.set_phase(name[0], "Succeeded")
    done = await stack.check_completed(after, "ogdc/recipes/sea-ice")
    assert done.conclusion == "success"
    assert len(stack.checks(after)) == 1  # one check run, updated, not one per state

    [run] = await stack.runs(commit=after)
    status, detail = await stack.api("GET", f"/runs/{run['id']}")
    assert [e["state"] for e in detail["events"]] == ["queued", "submitted", "running", "succeeded"]


async def test_failed_workflow_goes_red_with_the_failed_step(stack: Stack) -> None:
    before = _base(stack)
    after = _recipe_commit(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    [name] = await wait_for(lambda: stack.argo.created, what="a workflow")
    stack.argo.set_phase(
        name, "Failed", message="child failed", failed_nodes={"step-0": "exit code 2"}
    )
    done = await stack.check_completed(after, "ogdc/recipes/sea-ice")
    assert done.conclusion == "failure"
    assert "exit code 2" in done.output["summary"]


async def test_invalid_recipe_is_annotated_at_its_line(stack: Stack) -> None:
    before = _base(stack)
    bad = META.replace("type: url", "type: ftp")
    after = _recipe_commit(stack, bad)
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    done = await stack.check_completed(after, "ogdc/recipes/sea-ice")
    assert done.conclusion == "failure"
    [annotation] = done.annotations
    assert annotation["path"] == "recipes/sea-ice/meta.yml"
    assert annotation["start_line"] == 6
    assert "'ftp'" in annotation["message"]
    assert stack.argo.created == []


async def test_unknown_pusher_gets_one_failing_check_and_nothing_runs(stack: Stack) -> None:
    before = _base(stack)
    after = _recipe_commit(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after, sender="stranger"))
    done = await stack.check_completed(after, "ogdc")
    assert done.conclusion == "failure"
    assert "@stranger" in done.output["summary"]
    assert "admin" in done.output["summary"]
    assert [r.name for r in stack.checks(after)] == ["ogdc"]
    assert stack.argo.created == []


async def test_redelivery_is_acknowledged_and_not_processed_again(stack: Stack) -> None:
    before = _base(stack)
    after = _recipe_commit(stack)
    payload = push_payload(stack.git, before=before, after=after)
    assert (await stack.deliver(payload, delivery="delivery-1"))[0] == 202
    await wait_for(lambda: stack.argo.created, what="a workflow")
    status, body = await stack.deliver(payload, delivery="delivery-1")
    assert (status, body["detail"]) == (200, "already received")
    assert len(await stack.runs(commit=after)) == 1
    assert len(stack.argo.created) == 1


async def test_a_new_delivery_of_a_handled_commit_says_why_it_runs_nothing(stack: Stack) -> None:
    before = _base(stack)
    after = _recipe_commit(stack)
    payload = push_payload(stack.git, before=before, after=after)
    assert (await stack.deliver(payload, delivery="first-delivery"))[0] == 202
    await wait_for(lambda: stack.argo.created, what="a workflow")
    assert (await stack.deliver(payload, delivery="second-delivery"))[0] == 202

    def explained() -> bool:
        return "already run at this commit, so not again: recipes/" in stack.service.log_text()

    await wait_for(explained, what="the second push's log line")
    assert len(await stack.runs(commit=after)) == 1
    assert len(stack.argo.created) == 1


async def test_push_touching_no_recipe_reports_nothing(stack: Stack) -> None:
    before = _recipe_commit(stack)
    after = stack.git.commit("recipes", {"README.md": "only docs changed\n"})
    status, _ = await stack.deliver(push_payload(stack.git, before=before, after=after))
    assert status == 202
    # A second push that does change a recipe proves the first was fully processed.
    changed = _recipe_commit(stack, META.replace("Sea Ice Test", "Sea Ice Test Two"))
    await stack.deliver(push_payload(stack.git, before=after, after=changed))
    await wait_for(lambda: stack.checks(changed), what="the second push's check")
    assert stack.checks(after) == []
    assert await stack.runs(commit=after) == []


async def test_other_branches_are_rendered_only(stack: Stack) -> None:
    base = _base(stack)
    after = stack.git.commit(
        "recipes",
        {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT},
        branch="feature",
        parent=base,
    )
    await stack.deliver(push_payload(stack.git, before=ZERO, after=after, branch="feature"))
    done = await stack.check_completed(after, "ogdc/recipes/sea-ice")
    assert done.conclusion == "neutral"
    assert "not the default branch" in done.output["summary"]
    assert stack.argo.created == []
    [run] = await stack.runs(commit=after)
    status, workflow = await stack.api("GET", f"/runs/{run['id']}/workflow")
    assert status == 200
    assert workflow["kind"] == "Workflow"


async def test_rerequested_check_runs_the_recipe_again(stack: Stack) -> None:
    before = _base(stack)
    after = _recipe_commit(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    [first] = await wait_for(lambda: stack.argo.created, what="a workflow")
    stack.argo.set_phase(first, "Failed", message="flaky node")
    check = await stack.check_completed(after, "ogdc/recipes/sea-ice")
    rerequest = {
        "action": "rerequested",
        "check_run": {"id": check.id, "external_id": check.external_id, "head_sha": after},
        "repository": {"full_name": REPO},
        "sender": {"login": "recipe-author"},
        "installation": {"id": 808},
    }
    assert (await stack.deliver(rerequest, event="check_run"))[0] == 202
    names = await wait_for(lambda: stack.argo.created[1:], what="a second workflow")
    assert names[0] != first
    runs = await stack.runs(commit=after)
    assert sorted(r["attempt"] for r in runs) == [1, 2]


async def test_rerunning_the_refused_push_after_the_pusher_is_added_runs_it(stack: Stack) -> None:
    before = _base(stack)
    after = _recipe_commit(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after, sender="newcomer"))
    refused = await stack.check_completed(after, "ogdc")
    rerequest = {
        "action": "rerequested",
        "check_run": {"id": refused.id, "external_id": refused.external_id, "head_sha": after},
        "repository": {"full_name": REPO},
        "sender": {"login": "recipe-author"},
        "installation": {"id": 808},
    }
    await stack.deliver(rerequest, event="check_run")  # the pusher is still unknown

    async def still_refused() -> object:
        runs = await stack.runs(commit=after)
        return "still not a known user" in str(runs[0]["message"])

    await wait_for(still_refused, what="the re-run to say the pusher is still unknown")
    assert stack.argo.created == []

    await stack.add_user("newcomer", "Newcomer")
    await stack.deliver(rerequest, event="check_run")
    await wait_for(lambda: stack.argo.created, what="the push handled at last")

    def accepted() -> object:
        return [r for r in stack.checks(after, "ogdc") if r.conclusion == "success"]

    [check] = await wait_for(accepted, what="the ogdc check turning green")
    assert check.id == refused.id
    assert check.output["title"] == "Push accepted"
