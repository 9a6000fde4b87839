"""Checkouts from hostile git servers and repositories: every one ends with a clear,
permanent refusal within its budget, and nothing of it stays behind."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ogdc_hooks.checkout import (
    CHILDREN,
    GitError,
    RepositoryTooLarge,
    checkout,
    remove_stale_checkouts,
)
from tests.support.gitserver import GitServer
from tests.support.hostile_git import hostile_git

USER = "x-access-token"  # the user name GitHub wants with a token
TOKEN = "ghs_s3cr3tInstallationToken0123456789"
LIMIT = 50 * 1024 * 1024


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "checkouts"


def enter(clone_url: str, sha: str, dest: Path, **options: object) -> None:
    budgets: dict[str, object] = {"timeout_s": 30, "max_bytes": LIMIT, **options}
    with checkout(clone_url, sha, dest, **budgets):  # type: ignore[arg-type]
        pass


def test_git_bomb_is_stopped_at_the_file_budget(git_server: GitServer, dest: Path) -> None:
    git_server.create_repo("bomb")
    sha = git_server.bomb("bomb")  # 10^10 paths
    with pytest.raises(RepositoryTooLarge, match=r"more than 1000 files.*OGDC_CLONE_MAX_FILES"):
        enter(git_server.clone_url("bomb"), sha, dest, max_files=1000)
    assert list(dest.iterdir()) == []


def test_a_bomb_of_sizes_is_stopped_at_the_byte_budget(git_server: GitServer, dest: Path) -> None:
    git_server.create_repo("bomb")
    sha = git_server.bomb("bomb", width=40, depth=3)  # 64,000 paths of 2 bytes
    with pytest.raises(RepositoryTooLarge, match="over the limit of 100000 bytes"):
        enter(git_server.clone_url("bomb"), sha, dest, max_bytes=100_000)


def test_endless_progress_noise_then_garbage_is_a_permanent_error(
    git_server: GitServer, dest: Path
) -> None:
    git_server.create_repo("recipes")
    sha = git_server.commit("recipes", {"README.md": "hi\n"})
    with hostile_git("noise", upstream=git_server.url) as hostile:
        hostile.noise_bytes = 20 * 1024 * 1024
        with pytest.raises(GitError, match="bad pack header") as caught:
            enter(hostile.clone_url("recipes"), sha, dest)
    assert not caught.value.transient
    assert len(str(caught.value)) < 1000  # a summary, not the noise


def test_the_token_goes_to_the_clone_urls_origin_only_and_redirects_are_refused(
    git_server: GitServer, dest: Path
) -> None:
    git_server.create_repo("recipes")
    sha = git_server.commit("recipes", {"README.md": "hi\n"})
    git_server.token = TOKEN
    with hostile_git("redirect", target=git_server.url) as hostile:
        with pytest.raises(GitError, match="redirect, which is not followed") as caught:
            enter(hostile.clone_url("recipes"), sha, dest, token=TOKEN, token_user=USER)
        assert [r.authorized for r in hostile.requests] == [True]  # its own origin: yes
    assert not caught.value.transient
    assert git_server.requests == []  # never reached, so never got the token
    assert TOKEN not in str(caught.value)


def test_stopping_kills_a_clone_in_progress(git_server: GitServer, dest: Path) -> None:
    git_server.create_repo("recipes")
    sha = git_server.commit("recipes", {"README.md": "hi\n"})
    with hostile_git("silent") as hostile:
        errors: list[GitError] = []

        def clone() -> None:
            try:
                enter(hostile.clone_url("recipes"), sha, dest, timeout_s=300)
            except GitError as err:
                errors.append(err)

        worker = threading.Thread(target=clone)
        worker.start()
        deadline = time.monotonic() + 30
        while not hostile.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        with CHILDREN.stopped():
            worker.join(30)
    assert not worker.is_alive()
    assert errors and errors[0].transient and "shutting down" in str(errors[0])
    assert list(dest.iterdir()) == []


def test_checkouts_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / "checkout-999999999-abc"  # no such process
    alive = tmp_path / f"checkout-{1}-abc"  # init always runs
    other = tmp_path / "unrelated"
    for directory in (dead, alive, other):
        (directory / ".git").mkdir(parents=True)
    assert remove_stale_checkouts(tmp_path) == [dead.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])


def test_endless_refs_during_a_clone_hit_gits_memory_limit(dest: Path) -> None:
    limit = r"memory limit \(OGDC_GIT_MAX_MEMORY_BYTES\)"
    with hostile_git("refs") as hostile, pytest.raises(GitError, match=limit) as caught:
        enter(hostile.clone_url("recipes"), "c" * 40, dest, max_memory=64 * 1024 * 1024)
    assert not caught.value.transient
