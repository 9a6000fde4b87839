"""The deployment as an operator gets it: the overlays rendered by a pinned kubectl, the
Dockerfile, and the service installed the way the image installs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.pipeline.conftest import fake_argo, git_server, github, github_app_key, stack_env

__all__ = ["fake_argo", "git_server", "github", "github_app_key", "stack_env"]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")


def tool(name: str) -> str:
    """A command of the test extras: this virtual environment's first, then PATH's."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    if found is None:
        pytest.fail(f"{name} is missing: install the test extras (pip install -e '.[test]')")
    return found


@dataclass(frozen=True)
class Rendered:
    """The objects `kubectl kustomize` renders for one overlay, with lookups."""

    overlay: str
    objects: list[dict[str, Any]]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = self.all(kind)
        return found

    @property
    def namespace(self) -> str:
        (namespace,) = {o["metadata"]["namespace"] for o in self.objects}
        return str(namespace)

    @property
    def pod(self) -> dict[str, Any]:
        return dict(self.one("Deployment")["spec"]["template"])

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.pod["spec"]["containers"]
        return dict(container)

    @property
    def settings(self) -> dict[str, str]:
        """The ConfigMap the container takes its settings from."""
        (source,) = self.container["envFrom"]
        name = source["configMapRef"]["name"]
        (config,) = [c for c in self.all("ConfigMap") if c["metadata"]["name"] == name]
        return dict(config["data"])

    @property
    def env(self) -> dict[str, dict[str, Any]]:
        """The container's `env` entries by name."""
        return {entry["name"]: entry for entry in self.container["env"]}


def render(overlay: str) -> Rendered:
    done = subprocess.run(
        [tool("kubectl"), "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not done.stderr, done.stderr  # no deprecation warnings either
    return Rendered(overlay, [o for o in yaml.safe_load_all(done.stdout) if o])


@pytest.fixture(scope="session")
def overlays() -> dict[str, Rendered]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, overlays: dict[str, Rendered]) -> Rendered:
    return overlays[request.param]


@dataclass(frozen=True)
class Stage:
    """One stage of the Dockerfile: its base image and its instructions in order."""

    base: str
    instructions: list[tuple[str, str]]  # (INSTRUCTION, value)

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]


def dockerfile_stages() -> list[Stage]:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"), env_replace=False)
    args = {
        value.split("=", 1)[0]: value.split("=", 1)[1]
        for value in (i["value"] for i in parser.structure if i["instruction"] == "ARG")
        if "=" in value
    }
    stages: list[Stage] = []
    for item in parser.structure:
        name, value = item["instruction"], item["value"]
        if name == "FROM":
            base = value.split()[0]
            for arg, default in args.items():
                base = base.replace(f"${{{arg}}}", default)
            stages.append(Stage(base, []))
        elif stages:
            stages[-1].instructions.append((name, value))
    return stages


@pytest.fixture(scope="session")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service installed by deploy/install.sh, the script the image's build stage runs."""
    target = tmp_path_factory.mktemp("image") / "opt-ogdc-hooks"
    done = subprocess.run(
        ["sh", str(DEPLOY / "install.sh"), str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return target
