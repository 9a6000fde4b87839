"""The test git server answers plain `git` like a real smart-HTTP host (no code of ours)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from tests.support.gitserver import GitServer, Symlink


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_shallow_clone_and_fetch_by_sha(git_server: GitServer, tmp_path: Path) -> None:
    git_server.create_repo("r")
    first = git_server.commit("r", {"a/b.txt": "one\n", "link": Symlink("a/b.txt")})
    git_server.commit("r", {"a/b.txt": "two\n", "gone": None})

    clone = git("clone", "--quiet", "--depth=1", git_server.clone_url("r"), "c", cwd=tmp_path)
    assert clone.returncode == 0, clone.stderr
    assert (tmp_path / "c/a/b.txt").read_text() == "two\n"
    assert os.readlink(tmp_path / "c/link") == "a/b.txt"

    fetch = git("fetch", "--quiet", "--depth=1", "origin", first, cwd=tmp_path / "c")
    assert fetch.returncode == 0, fetch.stderr
    assert git("show", f"{first}:a/b.txt", cwd=tmp_path / "c").stdout == "one\n"


def test_token_is_required_when_set(git_server: GitServer, tmp_path: Path) -> None:
    git_server.create_repo("private")
    git_server.commit("private", {"x": "y"})
    git_server.token = "t0ken"

    refused = git("ls-remote", git_server.clone_url("private"), cwd=tmp_path)
    header = "Authorization: Basic " + base64.b64encode(b"x-access-token:t0ken").decode()
    allowed = git(
        "-c",
        f"http.extraHeader={header}",
        "ls-remote",
        git_server.clone_url("private"),
        cwd=tmp_path,
    )

    assert refused.returncode != 0
    assert allowed.returncode == 0, allowed.stderr
    assert "refs/heads/main" in allowed.stdout
    first, *later = git_server.requests
    assert not first.authorized
    assert later and all(r.authorized for r in later)
