"""A failed run's check says which step failed, why in one line, and the last lines it printed;
a succeeded run's check says where its output is. The real service, PostgreSQL and git, the
fake GitHub and Argo Server (its log stream and the node statuses Argo writes)."""

from __future__ import annotations

from typing import Any

from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import (
    META,
    REPO,
    SCRIPT,
    Stack,
    push_payload,
    running_stack,
    wait_for,
)
from tests.support.gitserver import GitServer

PVC_META = META.replace("type: temporary", "type: pvc")
SECRET_LINE = "curl -H 'Authorization: Bearer {token}' --password=hunter2-hunter2 ..."
# recipe -> (failure class, step, log (None: its pod is gone), what the check must say)
FAILURES: dict[str, tuple[str, str, list[str] | None, list[str]]] = {
    "oom": ("oom", "cmd-0", ["reading 6 GiB raster"], ["out of memory (OOMKilled)", "raster"]),
    "exit": (
        "exit",
        "cmd-1",
        ["recipe.sh:3: gdalinfo: not found", SECRET_LINE],
        ["exit code 2", "gdalinfo: not found", "[redacted]"],
    ),
    "image": ("image", "cmd-0", [], ["image pull failure", "ImagePullBackOff"]),
    "deadline": ("deadline", "cmd-0", ["still tiling"], ["deadline exceeded", "still tiling"]),
    "deleted": ("deleted", "cmd-0", None, ["pod deleted or evicted", "pod is gone"]),
    "fetch": (
        "exit",
        "fetch",
        ["Connecting to data.example.org", "wget: server returned error: HTTP/1.1 404 Not Found"],
        ["input download failed", "Fetching the recipe's inputs failed. wget: server returned"],
    ),
}


async def _workflows(stack: Stack, commit: str, count: int) -> dict[str, dict[str, Any]]:
    """The runs of the commit by recipe directory, once each has its workflow."""

    async def named() -> dict[str, dict[str, Any]] | None:
        runs = await stack.runs(commit=commit)
        ready = [run for run in runs if run["workflow_name"]]
        return {r["recipe"].split("/")[-1]: r for r in ready} if len(ready) == count else None

    return await wait_for(named, within=60, what=f"{count} workflows")


def _push_recipes(stack: Stack, metas: dict[str, str]) -> str:
    files = {}
    for recipe, meta in metas.items():
        files[f"recipes/{recipe}/meta.yml"] = meta
        files[f"recipes/{recipe}/recipe.sh"] = SCRIPT
    return stack.git.commit("recipes", files)


async def test_each_failure_class_and_each_output_reach_the_check(stack: Stack) -> None:
    before = stack.git.commit("recipes", {"README.md": "x\n"})
    metas = {recipe: META for recipe in FAILURES} | {"zip": META, "volume": PVC_META}
    after = _push_recipes(stack, metas)
    assert (await stack.deliver(push_payload(stack.git, before=before, after=after)))[0] == 202
    runs = await _workflows(stack, after, len(metas))
    secret_log = SECRET_LINE.format(token=stack.argo.token)
    for recipe, (failure, step, log, _) in FAILURES.items():
        name = runs[recipe]["workflow_name"]
        lines = [secret_log if line == SECRET_LINE else line for line in log or ()]
        stack.argo.fail_step(
            name, step, failure, exit_code=2, log=lines if log is not None else None
        )
        stack.argo.set_phase(name, "Failed", message=f"child '{name}' failed")
    stack.argo.add_output_artifact(runs["zip"]["workflow_name"], b"PK")
    for recipe in ("zip", "volume"):
        stack.argo.set_phase(runs[recipe]["workflow_name"], "Succeeded")

    for recipe, (_, step, _, expected) in FAILURES.items():
        check = await _detailed(stack, after, recipe)
        assert check.conclusion == "failure"
        assert check.output["title"].startswith(f"Workflow failed: {expected[0]} in step `{step}`")
        for words in expected[1:]:
            assert words in check.output["text"], (recipe, words)
        assert stack.argo.token not in check.output["text"] and "hunter2" not in str(check.output)

    exit_check = await _detailed(stack, after, "exit")
    [note] = exit_check.annotations
    assert (note["path"], note["start_line"]) == ("recipes/exit/recipe.sh", 3)
    assert "gdalinfo: not found" in note["message"]

    status, run = await stack.api("GET", f"/runs/{runs['exit']['id']}")
    assert status == 200, run
    assert run["failure"]["classification"] == "exit code 2"
    [failed] = run["failure"]["steps"]
    assert failed["step"] == "cmd-1" and failed["log_tail"][0] == "recipe.sh:3: gdalinfo: not found"
    assert "hunter2" not in str(run) and stack.argo.token not in str(run)

    zipped = await _summary_with(stack, after, "zip", "/artifacts/")
    assert f"/artifacts/{stack.argo.namespace}/{runs['zip']['workflow_name']}/" in zipped
    volume = await _summary_with(stack, after, "volume", "workflow volume")
    assert "on the workflow volume `cephfs-qgnet-ogdc-workflow-pvc`" in volume


async def _detailed(stack: Stack, sha: str, recipe: str) -> Any:
    """The recipe's check once it carries the failure details."""

    def shown() -> Any:
        runs = [r for r in stack.checks(sha, f"ogdc/recipes/{recipe}") if r.output.get("text")]
        return runs[-1] if runs else None

    return await wait_for(shown, within=60, what=f"failure details on {recipe}'s check")


async def _summary_with(stack: Stack, sha: str, recipe: str, words: str) -> str:
    def shown() -> str | None:
        runs = stack.checks(sha, f"ogdc/recipes/{recipe}")
        summary = str(runs[-1].output.get("summary")) if runs else ""
        return summary if words in summary else None

    return await wait_for(shown, within=60, what=f"{words!r} in {recipe}'s check")


async def test_a_status_names_the_class_and_links_the_run(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    token = github.add_token()
    github.add_repository(REPO)
    env = {key: value for key, value in stack_env.items() if not key.startswith("GITHUB_APP")}
    env.update(GITHUB_TOKEN=token, OGDC_PUBLIC_URL="https://hooks.example.org")
    async with running_stack(env, github, fake_argo, git_server) as stack:
        before = git_server.commit("recipes", {"README.md": "x\n"})
        after = _push_recipes(stack, {"oom": META})
        payload = push_payload(git_server, before=before, after=after)
        del payload["installation"]
        await stack.deliver(payload)
        run = (await _workflows(stack, after, 1))["oom"]
        fake_argo.fail_step(run["workflow_name"], "cmd-0", "oom", log=["reading"])
        fake_argo.break_next_log_stream()  # the first read fails: the details job retries
        fake_argo.set_phase(run["workflow_name"], "Failed")

        def final() -> Any:
            history = github.status_history(REPO, after, "ogdc/recipes/oom")
            last = history[-1] if history else None
            return last if last and "OOMKilled" in (last.description or "") else None

        status = await wait_for(final, within=60, what="a failure status naming the class")
        assert status.state == "failure"
        assert status.description == "Workflow failed: out of memory (OOMKilled) in step `cmd-0`"
        assert status.target_url == f"https://hooks.example.org/runs/{run['id']}"
        _, detail = await stack.api("GET", f"/runs/{run['id']}")
        assert detail["failure"]["steps"][0]["log_tail"] == ["reading"]
        assert sum(1 for r in fake_argo.requests if r.path.endswith("/log")) >= 2
