"""The service as the container runs it, as near as this machine allows: installed by the
image's own install script (not the source tree), started by its entry point from `/`, on a
root filesystem that is read-only but for one temporary directory, it takes a push through
a real git server to the fake Argo Server and turns the check green."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT
from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import META, SCRIPT, push_payload, running_stack, wait_for
from tests.support.gitserver import GitServer
from tests.support.readonly_root import read_only_root, why_no_read_only_root
from tests.support.service import DEFAULT_SECRETS, Service


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def read_only_root_here() -> None:
    """Mount namespaces need root (or CAP_SYS_ADMIN); elsewhere these tests are skipped."""
    reason = why_no_read_only_root()
    if reason is not None:
        pytest.skip(f"cannot make a read-only root here: {reason}")


def test_the_install_is_the_package_alone_without_pip_or_setuptools(image_venv: Path) -> None:
    done = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c", "import ogdc_hooks; print(ogdc_hooks.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(done.stdout.strip()).is_relative_to(image_venv)
    site = next(image_venv.glob("lib/python3*/site-packages"))
    assert not list(site.glob("pip*")) and not list(site.glob("setuptools*"))
    assert list(site.glob("ogdc_hooks/db/migrations/versions/*.py"))
    assert list(site.glob("ogdc_hooks/**/__pycache__/*.pyc"))  # compiled: the root is read-only


@pytest.mark.usefixtures("read_only_root_here")
async def test_the_installed_service_takes_a_push_on_a_read_only_root(
    image_venv: Path,
    stack_env: dict[str, str],
    *,
    github: FakeGitHub,
    fake_argo: FakeArgo,
    git_server: GitServer,
    tmp_path: Path,
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**stack_env, "TMPDIR": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    command = read_only_root(scratch, str(image_venv / "bin" / "ogdc-hooks"))
    service = Service(env, command=command, cwd=Path("/"))
    async with running_stack(env, github, fake_argo, git_server, service=service) as stack:
        before = stack.git.commit("recipes", {"README.md": "recipes\n"})
        after = stack.git.commit(
            "recipes", {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT}
        )
        status, _ = await stack.deliver(push_payload(stack.git, before=before, after=after))
        assert status == 202
        [name] = await wait_for(lambda: stack.argo.created, what="a workflow in Argo")
        stack.argo.set_phase(name, "Succeeded")
        done = await stack.check_completed(after, "ogdc/recipes/sea-ice")
        assert done.conclusion == "success"

        entry_point = str(image_venv / "bin" / "ogdc-hooks")
        health = await asyncio.to_thread(_run, [entry_point, "healthcheck", "--port", service.port])
        assert health.returncode == 0, health.stderr
    # The checkout was made in the one writable place, and removed.
    checkouts = scratch / "ogdc-hooks-checkouts"
    assert checkouts.is_dir()
    assert list(checkouts.iterdir()) == []
    assert "Read-only file system" not in service.log_text()


@pytest.mark.usefixtures("read_only_root_here")
def test_the_wrapper_lets_nothing_but_the_temporary_directory_be_written(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    inside = _run(read_only_root(scratch, "touch", str(scratch / "file")))
    assert inside.returncode == 0, inside.stderr
    outside = _run(read_only_root(scratch, "touch", str(tmp_path / "file")))
    assert outside.returncode != 0
    assert "Read-only file system" in outside.stderr
    assert not (tmp_path / "file").exists()


@pytest.mark.usefixtures("read_only_root_here")
def test_without_a_writable_temporary_directory_the_start_stops_with_one_line(
    db_env: dict[str, str], tmp_path: Path
) -> None:
    unrelated = tmp_path / "unrelated"  # writable, but not where tempfile looks
    unrelated.mkdir()
    service = Service(
        {**db_env, **DEFAULT_SECRETS},
        command=read_only_root(unrelated, sys.executable, "-m", "ogdc_hooks"),
        cwd=ROOT,
    )
    service.env.pop("TMPDIR", None)
    service.launch()
    assert service.wait() == 1
    log = service.log_text()
    assert "Traceback" not in log
    last = log.splitlines()[-1]
    assert last.startswith(
        "ogdc-hooks: error: no writable temporary directory for checkouts "
        "(No usable temporary directory found in ['/tmp', "
    ), last
    assert last.endswith("): set TMPDIR, or mount one at /tmp"), last
