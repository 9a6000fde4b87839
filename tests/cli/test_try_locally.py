"""The README's "Try it locally" steps, run exactly as written, in an empty directory."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.data import ROOT
from tests.support.postgres import stop_embedded

STEPS = re.compile(r"<!-- try-locally -->\n```sh\n(.*?)```\n<!-- /try-locally -->", re.S)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Outside pytest's private temporary root: the embedded PostgreSQL runs as its own user
    when the tests run as root (see tests/api/test_embedded.py)."""
    directory = Path(tempfile.mkdtemp(prefix="ogdc-try-"))
    yield directory
    stop_embedded(directory / "ogdc-dev-data" / "pgdata", within=60)  # kill %1 is a SIGTERM
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_the_documented_steps_take_a_push_from_a_folder_to_a_run(workdir: Path) -> None:
    [steps] = STEPS.findall((ROOT / "README.md").read_text())
    script = workdir / "steps.sh"
    script.write_text("set -eu\n" + steps)
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OGDC_", "GITHUB_", "ARGO_", "API_ROOT_PATH"))
    }
    path = os.pathsep.join([str(Path(sys.executable).parent), clean.get("PATH", "")])
    done = subprocess.run(
        ["bash", str(script)],
        cwd=workdir,
        env={**clean, "PATH": path, "PORT": str(_free_port())},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    log = (workdir / "ogdc-dev.log").read_text() if (workdir / "ogdc-dev.log").exists() else ""
    assert done.returncode == 0, (done.stdout, done.stderr, log)
    assert "the service answered 202: " in done.stdout
    assert "the service fetched" in done.stdout
    listing = done.stdout.splitlines()[-1]
    assert "recipes/hello" in listing, done.stdout
    assert "Traceback" not in done.stderr + log
