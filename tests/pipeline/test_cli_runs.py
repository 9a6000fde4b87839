"""What a user sees of runs through the CLI, against the real service: sentences in one
language, an exit code per outcome, and `runs show|workflow|watch`, `users update`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml

from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import META, SCRIPT, Stack, allowing, running_stack, wait_for
from tests.support.gitserver import GitServer
from tests.support.service import DEFAULT_SECRETS

INVALID_META = META.replace("type: shell", "type: shel")


def _env(stack: Stack, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OGDC_")}
    return {
        **clean,
        "OGDC_API_URL": stack.service.url,
        "OGDC_API_USERNAME": "admin",
        "OGDC_API_PASSWORD": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"],
        **extra,
    }


async def cli(
    stack: Stack, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`ogdc-hooks ARGS` as a user runs it, off the event loop the service's fakes run on."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ogdc_hooks", *args],
        env=_env(stack, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _publish(stack: Stack, recipe: str = "sea-ice", meta: str = META) -> str:
    return stack.git.commit(
        "recipes", {f"recipes/{recipe}/meta.yml": meta, f"recipes/{recipe}/recipe.sh": SCRIPT}
    )


def _submit_args(stack: Stack, recipe: str = "sea-ice") -> list[str]:
    url = stack.git.clone_url("recipes")
    return ["submit", url, "--ref", "main", "--path", f"recipes/{recipe}"]


@pytest.fixture
async def dry_stack(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> AsyncIterator[Stack]:
    """The service without an Argo Server: every run is a dry run."""
    env = allowing(
        {k: v for k, v in stack_env.items() if not k.startswith("ARGO_")}, git_server.url
    )
    async with running_stack(env, github, fake_argo, git_server) as running:
        yield running


async def _finished_run(stack: Stack, sha: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        runs = await stack.runs(commit=sha)
        done = [run for run in runs if run["state"] not in ("queued", "submitted", "running")]
        return done[0] if done else None

    return await wait_for(finished, what="the run to finish")


async def test_a_dry_run_reads_as_a_sentence_and_has_its_own_exit_code(dry_stack: Stack) -> None:
    sha = _publish(dry_stack)
    done = await cli(dry_stack, *_submit_args(dry_stack))
    assert done.returncode == 5, (done.stdout, done.stderr)
    assert "recipes/sea-ice: dry run, rendered and stored, not submitted (" in done.stdout
    assert "no Argo Server is configured" in done.stdout
    assert "Only local validation was done" in done.stdout  # no Argo Server linted it
    [run_id] = [
        line.removeprefix("run: ") for line in done.stdout.splitlines() if line.startswith("run: ")
    ]

    status = await cli(dry_stack, "status", run_id)
    assert status.returncode == 5, status.stderr
    assert status.stdout.startswith("no workflow: Skipped (dry run, rendered and stored")

    shown = await cli(dry_stack, "runs", "show", run_id)
    assert shown.returncode == 5, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("recipes/sea-ice: dry run")
    queued = next(line for line in lines if "recipes/sea-ice: queued" in line)
    assert "Dry run" not in queued  # the queued event no longer claims a dry run
    assert sha[:12] in shown.stdout

    rendered = await cli(dry_stack, "runs", "workflow", run_id)
    assert rendered.returncode == 0, rendered.stderr
    manifest = yaml.safe_load(rendered.stdout)
    assert manifest["kind"] == "Workflow"
    assert json.loads((await cli(dry_stack, "runs", "workflow", run_id, "--format", "json")).stdout)


async def test_an_invalid_recipe_ends_the_cli_with_its_exit_code(dry_stack: Stack) -> None:
    sha = _publish(dry_stack, "broken", INVALID_META)
    done = await cli(dry_stack, *_submit_args(dry_stack, "broken"), "--wait")
    assert done.returncode == 4, (done.stdout, done.stderr)
    assert "recipes/broken: invalid, not submitted (" in done.stdout
    run = await _finished_run(dry_stack, sha)
    shown = await cli(dry_stack, "runs", "show", run["id"])
    assert "recipes/broken/meta.yml:" in shown.stdout  # the problem, with its file and line
    assert shown.returncode == 4


async def test_runs_filters_explain_themselves(dry_stack: Stack) -> None:
    sha = _publish(dry_stack)
    await cli(dry_stack, *_submit_args(dry_stack))
    await _finished_run(dry_stack, sha)

    bogus = await cli(dry_stack, "runs", "--state", "bogus")
    assert bogus.returncode == 2
    assert "invalid choice: 'bogus'" in bogus.stderr
    assert "dry_run" in bogus.stderr and "succeeded" in bogus.stderr

    help_text = " ".join((await cli(dry_stack, "runs", "--help")).stdout.split())
    assert "a bare NAME means recipes/NAME" in help_text and "--state" in help_text

    bare = await cli(dry_stack, "runs", "--recipe", "sea-ice")
    assert "recipes/sea-ice" in bare.stdout and sha[:12] in bare.stdout
    page = json.loads((await cli(dry_stack, "runs", "list", "--json")).stdout)
    assert [run["commit_sha"] for run in page["runs"]] == [sha]


async def test_watch_prints_each_change_until_the_run_ends(stack: Stack) -> None:
    _publish(stack)
    submitted = await cli(stack, *_submit_args(stack), "--json")
    assert submitted.returncode == 0, submitted.stderr
    answer = json.loads(submitted.stdout)
    watcher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ogdc_hooks",
        "runs",
        "watch",
        answer["run_id"],
        env=_env(stack),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert watcher.stdout is not None
    printed: list[str] = []

    async def until_printed(words: str) -> None:
        """Read the watcher's lines until one has `words` (it polls; the test waits for it)."""
        async with asyncio.timeout(60):
            while not any(words in line for line in printed):
                printed.append((await watcher.stdout.readline()).decode())
                assert printed[-1], f"watch ended before printing {words!r}: {printed}"

    [name] = await wait_for(lambda: stack.argo.created, what="the workflow")
    for steps in ("1/4", "3/4"):  # Argo's status.progress as partitions finish
        stack.argo.set_phase(name, "Running", progress=steps)
        await until_printed(f"recipes/sea-ice: {steps} steps done")
    assert any("recipes/sea-ice: running in Argo" in line for line in printed)
    stack.argo.set_phase(name, "Succeeded", progress="4/4")
    rest, errors = await asyncio.wait_for(watcher.communicate(), 90)
    lines = printed + rest.decode().splitlines()
    assert watcher.returncode == 0, (lines, errors)
    assert "recipes/sea-ice: succeeded" in lines[-1]
    status = await cli(stack, "status", name)
    assert (status.returncode, status.stdout.split(":")[0]) == (0, name)


async def test_users_update_changes_only_what_is_given(dry_stack: Stack) -> None:
    nothing = await cli(dry_stack, "users", "update", "author")
    assert nothing.returncode == 1
    assert "nothing to change: give --password-stdin" in nothing.stderr

    disabled = await cli(dry_stack, "users", "update", "author", "--disable")
    assert disabled.returncode == 0, disabled.stderr
    assert "User 'author' updated." in disabled.stdout
    [user] = [
        u
        for u in json.loads((await cli(dry_stack, "users", "list", "--json")).stdout)["users"]
        if u["name"] == "author"
    ]
    assert user["active"] is False

    changed = await cli(
        dry_stack,
        "users",
        "update",
        "author",
        "--enable",
        "--password-stdin",
        stdin="a-new-long-password\n",
    )
    assert changed.returncode == 0, changed.stderr
    as_author = await cli(
        dry_stack, "runs", OGDC_API_USERNAME="author", OGDC_API_PASSWORD="a-new-long-password"
    )
    assert as_author.returncode == 0, as_author.stderr


async def test_a_url_without_the_root_path_is_named_as_the_likely_mistake(
    dry_stack: Stack,
) -> None:
    done = await cli(dry_stack, "runs", OGDC_API_URL=dry_stack.service.url + "/wrong")
    assert done.returncode == 1
    assert "OGDC_API_URL is probably not the API's address" in done.stderr
    assert "API_ROOT_PATH" in done.stderr
