"""`/submit`, `/status`, `/output` and the CLI's `submit --wait`, through the real service."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from tests.pipeline.conftest import META, SCRIPT, Stack, wait_for
from tests.support.service import DEFAULT_SECRETS


def _publish(stack: Stack) -> str:
    return stack.git.commit(
        "recipes", {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT}
    )


async def test_submit_status_and_output(stack: Stack) -> None:
    sha = _publish(stack)
    status, answer = await stack.api(
        "POST",
        "/submit",
        json={
            "recipe_path": stack.git.clone_url("recipes"),
            "ref": "main",
            "path": "recipes/sea-ice",
            "overwrite": True,
        },
    )
    assert status == 202, answer
    name = answer["recipe_workflow_name"]
    assert name in stack.argo.created
    [run] = await stack.runs(commit=sha)
    assert (run["trigger"], run["requested_by"], run["overwrite"]) == ("api", "admin", True)

    status, state = await stack.api("GET", f"/status/{name}")
    assert (status, state["status"]) == (200, "Pending")

    stack.argo.set_phase(name, "Succeeded")
    stack.argo.add_output_artifact(name, b"PK\x05\x06" + b"\0" * 18)

    async def succeeded() -> bool:
        return (await stack.api("GET", f"/status/{name}"))[1]["status"] == "Succeeded"

    await wait_for(succeeded, what="the workflow to succeed")
    status, output = await stack.api("GET", f"/output/{name}")
    assert status == 200, output
    assert output["data_url"].startswith(stack.argo.url)
    assert output["data_url"].endswith("/published_zip")


async def test_bad_submissions_get_clear_errors(stack: Stack) -> None:
    _publish(stack)
    cases = [
        ({"recipe_path": "ftp://example.org/x"}, 422, "recipe_path"),
        ({"recipe_path": stack.git.clone_url("recipes"), "ref": "main"}, 422, "path"),
        (
            {"recipe_path": stack.git.clone_url("recipes"), "ref": "nope", "path": "recipes/x"},
            422,
            "not a branch or tag",
        ),
        (
            {"recipe_path": stack.git.clone_url("recipes"), "ref": "main", "path": "../etc"},
            422,
            "..",
        ),
        ({"overwrite": True}, 422, "recipe_path"),
    ]
    for body, expected, words in cases:
        status, answer = await stack.api("POST", "/submit", json=body)
        assert (status, words in answer["detail"]) == (expected, True), (body, answer)
    status, answer = await stack.api("GET", "/status/no-such-workflow")
    assert status == 404
    status, answer = await stack.api("GET", "/runs", params={"limit": "1000"})
    assert status == 422


async def _read_until(stream: asyncio.StreamReader, word: bytes) -> bytes:
    """The lines `stream` gives up to and with the first one holding `word` (all, at its end)."""
    lines = b""
    while line := await stream.readline():
        lines += line
        if word in line:
            break
    return lines


async def test_cli_submit_waits_and_exits_with_the_final_state(stack: Stack) -> None:
    _publish(stack)
    env = {
        **os.environ,
        "OGDC_API_URL": stack.service.url,
        "OGDC_API_USERNAME": "admin",
        "OGDC_API_PASSWORD": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"],
    }
    command = [
        sys.executable,
        "-m",
        "ogdc_hooks",
        "submit",
        stack.git.clone_url("recipes"),
        "--ref",
        "main",
        "--path",
        "recipes/sea-ice",
        "--wait",
    ]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    [name] = await wait_for(lambda: stack.argo.created, what="the CLI's workflow")
    stack.argo.set_phase(name, "Running")
    assert process.stdout is not None
    printed = await asyncio.wait_for(_read_until(process.stdout, b"running"), 60)
    stack.argo.set_phase(name, "Failed", message="step-1 ran out of memory")
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 3, (out, err)  # failed in Argo (README: exit codes)
    text = (printed + out).decode()
    assert name in text
    assert "running" in text
    assert "ran out of memory" in text
    assert b"Traceback" not in err
