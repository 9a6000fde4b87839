"""The image cannot be built here (no container engine): its Dockerfile is linted, its promises
are read off it, and its install script is checked and run (test_container.py)."""

from __future__ import annotations

import json
import subprocess

from tests.deploy.conftest import DEPLOY, ROOT, dockerfile_stages, tool

BUILD_TOOLS = ("gcc", "g++", "make", "build-essential", "-dev ", "pip install", "python3-pip")


def _lint(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_hadolint_finds_nothing_even_of_style() -> None:
    done = _lint(
        [tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DEPLOY / "Dockerfile")]
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_would_tell_an_unpinned_apt_install() -> None:
    unpinned = (DEPLOY / "Dockerfile").read_text().replace("# hadolint ignore=DL3008\n", "")
    done = subprocess.run(
        [tool("hadolint"), "--no-color", "-"],
        input=unpinned,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "DL3008" in done.stdout


def test_shellcheck_finds_nothing_in_the_install_script() -> None:
    done = _lint([tool("shellcheck"), "--shell=sh", "--severity=style", str(DEPLOY / "install.sh")])
    assert done.returncode == 0, done.stdout + done.stderr


def test_two_stages_on_a_slim_base_and_the_build_tools_stay_in_the_first() -> None:
    build, final = dockerfile_stages()
    assert build.base == final.base
    assert final.base.startswith("python:3.11-slim")
    assert build.values("RUN") == ["sh deploy/install.sh /opt/ogdc-hooks"]
    assert final.values("COPY") == ["--from=build /opt/ogdc-hooks /opt/ogdc-hooks"]
    assert any(
        "pip uninstall --yes --no-cache-dir pip setuptools wheel" in run
        for run in final.values("RUN")
    )
    for command in final.values("RUN"):
        for build_tool in BUILD_TOOLS:
            assert build_tool not in command + " ", (build_tool, command)
        if "apt-get install" in command:  # the package lists go in the same layer
            assert "rm -rf /var/lib/apt/lists/*" in command


def test_serve_runs_as_the_entrypoint_of_a_non_root_user_with_a_health_check() -> None:
    final = dockerfile_stages()[-1]
    (user,) = final.values("USER")
    assert all(part.isdigit() and int(part) != 0 for part in user.split(":"))
    assert final.values("ENTRYPOINT") == ['["ogdc-hooks"]']
    (cmd,) = final.values("CMD")
    serve = json.loads(cmd)
    assert serve[0] == "serve"
    port = serve[serve.index("--port") + 1]
    assert final.values("EXPOSE") == [port]
    (health,) = final.values("HEALTHCHECK")
    options, _, check = health.partition(" CMD ")
    assert json.loads(check) == ["ogdc-hooks", "healthcheck", "--port", port]
    assert "--timeout=5s" in options.split()


def test_the_build_context_holds_what_the_dockerfile_copies_and_little_else() -> None:
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line]
    assert "*" in ignore  # everything else (.git, .venv, tests) stays out
    build, _ = dockerfile_stages()
    for copy in build.values("COPY"):
        for source in copy.split()[:-1]:
            assert f"!{source}" in ignore or f"!{source}/" in ignore, source
