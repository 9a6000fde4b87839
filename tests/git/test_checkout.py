"""Fetching one commit and diffing commits against a real git server."""

from __future__ import annotations

import base64
import logging
import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

from ogdc_hooks.checkout import (
    GitError,
    RepositoryTooLarge,
    checkout,
    fetch_trees,
)
from tests.support.gitserver import GitServer, Symlink

LIMIT = 50 * 1024 * 1024
USER = "x-access-token"  # the user name GitHub wants with a token
TOKEN = "ghs_s3cr3tInstallationToken0123456789"


@pytest.fixture
def repo(git_server: GitServer) -> str:
    git_server.create_repo("recipes")
    git_server.commit("recipes", {"recipes/seal/meta.yml": "name: seal\n", "README.md": "hi\n"})
    return git_server.clone_url("recipes")


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "checkouts"


def test_checks_out_exactly_that_commit(git_server: GitServer, repo: str, dest: Path) -> None:
    first = git_server.head("recipes")
    git_server.commit(
        "recipes",
        {"recipes/seal/meta.yml": "name: seal v2\n", "recipes/seal/link": Symlink("../../..")},
    )
    assert first is not None

    with checkout(repo, first, dest, timeout_s=30, max_bytes=LIMIT) as work:
        assert (work / "recipes/seal/meta.yml").read_text() == "name: seal\n"
        assert not (work / "recipes/seal/link").exists()
        assert work.parent == dest

    head = git_server.head("recipes")
    assert head is not None
    with checkout(repo, head, dest, timeout_s=30, max_bytes=LIMIT) as work:
        assert (work / "recipes/seal/meta.yml").read_text() == "name: seal v2\n"
        link = work / "recipes/seal/link"
        assert link.is_symlink() and os.readlink(link) == "../../.."  # left to the loader
        assert (work / ".git/shallow").read_text().split() == [head]


@pytest.mark.parametrize("ending", ["ok", "error in body", "git error"])
def test_temporary_directory_is_always_removed(
    git_server: GitServer, repo: str, dest: Path, ending: str
) -> None:
    sha = git_server.head("recipes") if ending != "git error" else "f" * 40
    assert sha is not None
    expected = pytest.raises((GitError, RuntimeError)) if ending != "ok" else nullcontext()
    with expected, checkout(repo, sha, dest, timeout_s=30, max_bytes=LIMIT) as work:
        assert work.is_dir()
        if ending == "error in body":
            raise RuntimeError("the pipeline failed while reading recipes")
    assert list(dest.iterdir()) == []


def test_missing_commit_is_permanent_and_named(repo: str, dest: Path) -> None:
    with pytest.raises(GitError) as caught:
        enter(checkout(repo, "f" * 40, dest, timeout_s=30, max_bytes=LIMIT))
    assert not caught.value.transient
    assert repo in str(caught.value)
    assert "f" * 40 in str(caught.value)


def test_missing_repository_is_permanent(git_server: GitServer, dest: Path) -> None:
    with pytest.raises(GitError, match="not found") as caught:
        enter(
            checkout(git_server.clone_url("nothere"), "a" * 40, dest, timeout_s=30, max_bytes=LIMIT)
        )
    assert not caught.value.transient


@pytest.mark.parametrize("status", [503, 500, 429])
def test_server_errors_are_transient(
    git_server: GitServer, repo: str, dest: Path, status: int
) -> None:
    sha = git_server.head("recipes")
    assert sha is not None
    git_server.fail_next(1, status)
    with pytest.raises(GitError, match=str(status)) as caught:
        enter(checkout(repo, sha, dest, timeout_s=30, max_bytes=LIMIT))
    assert caught.value.transient


def test_unreachable_server_is_transient(dest: Path, unused_tcp_port: int) -> None:
    with pytest.raises(GitError) as caught:
        enter(
            checkout(
                f"http://127.0.0.1:{unused_tcp_port}/r.git",
                "a" * 40,
                dest,
                timeout_s=30,
                max_bytes=LIMIT,
            )
        )
    assert caught.value.transient


def test_time_limit_kills_git_and_cleans_up(git_server: GitServer, repo: str, dest: Path) -> None:
    sha = git_server.head("recipes")
    assert sha is not None
    git_server.delay_next(1, 60)  # the server stalls far beyond the limit
    with pytest.raises(GitError, match="time limit") as caught:
        enter(checkout(repo, sha, dest, timeout_s=1, max_bytes=LIMIT))
    assert caught.value.transient
    assert list(dest.iterdir()) == []


def test_too_many_fetched_bytes_are_refused(git_server: GitServer, repo: str, dest: Path) -> None:
    big = git_server.commit("recipes", {"data.bin": os.urandom(3 * 1024 * 1024)})
    with pytest.raises(RepositoryTooLarge, match="limit of 1048576 bytes") as caught:
        enter(checkout(repo, big, dest, timeout_s=30, max_bytes=1024 * 1024))
    assert not caught.value.transient
    assert list(dest.iterdir()) == []


def test_fetch_is_stopped_while_it_grows_past_the_limit(
    git_server: GitServer, repo: str, dest: Path
) -> None:
    big = git_server.commit("recipes", {"data.bin": os.urandom(4 * 1024 * 1024)})
    git_server.throttle_bps = 1024 * 1024  # about four seconds for the whole pack
    with pytest.raises(RepositoryTooLarge, match="stopped, the fetched data grew past"):
        enter(checkout(repo, big, dest, timeout_s=60, max_bytes=512 * 1024))
    assert list(dest.iterdir()) == []


def test_highly_compressed_work_tree_is_refused_before_checkout(
    git_server: GitServer, repo: str, dest: Path
) -> None:
    bomb = git_server.commit("recipes", {"zeros.bin": bytes(20 * 1024 * 1024)})
    with pytest.raises(RepositoryTooLarge, match=r"it would need 2\d{7} bytes") as caught:
        enter(checkout(repo, bomb, dest, timeout_s=30, max_bytes=4 * 1024 * 1024))
    assert not caught.value.transient
    assert list(dest.iterdir()) == []


def test_token_is_required_used_and_never_leaked(
    git_server: GitServer,
    repo: str,
    dest: Path,
    git_argv_log: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sha = git_server.head("recipes")
    assert sha is not None
    git_server.token = TOKEN
    encoded = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()

    with pytest.raises(GitError, match="refused access") as anonymous:
        enter(checkout(repo, sha, dest, timeout_s=30, max_bytes=LIMIT))
    with pytest.raises(GitError, match="refused access") as wrong:
        enter(
            checkout(
                repo,
                sha,
                dest,
                token="ghs_wrongTokenValue000000000",
                token_user=USER,
                timeout_s=30,
                max_bytes=LIMIT,
            )
        )
    with checkout(
        repo, sha, dest, token=TOKEN, token_user=USER, timeout_s=30, max_bytes=LIMIT
    ) as work:
        stored = b"".join(p.read_bytes() for p in (work / ".git").rglob("*") if p.is_file())
        assert TOKEN.encode() not in stored and encoded.encode() not in stored
        assert (work / "README.md").exists()

    assert not anonymous.value.transient and not wrong.value.transient
    assert "ghs_wrongTokenValue000000000" not in str(wrong.value)
    assert git_server.requests[-1].authorized
    argv = git_argv_log.read_text()
    assert "fetch" in argv
    for text in (argv, caplog.text, str(anonymous.value), str(wrong.value)):
        assert TOKEN not in text and encoded not in text


def test_credentials_in_the_url_are_used_but_never_shown(
    git_server: GitServer, repo: str, dest: Path
) -> None:
    git_server.token = TOKEN
    with_credentials = repo.replace("http://", f"http://x-access-token:{TOKEN}@")
    sha = git_server.head("recipes")
    assert sha is not None
    with checkout(with_credentials, sha, dest, timeout_s=30, max_bytes=LIMIT) as work:
        assert TOKEN not in (work / ".git/config").read_text()
    with pytest.raises(GitError) as caught:
        enter(checkout(with_credentials, "f" * 40, dest, timeout_s=30, max_bytes=LIMIT))
    assert TOKEN not in str(caught.value)
    assert repo in str(caught.value)


@pytest.mark.parametrize(
    ("url", "sha"),
    [
        ("file:///etc", "a" * 40),
        ("ext::sh -c touch% /tmp/pwned", "a" * 40),
        ("ssh://git@example.org/r.git", "a" * 40),
        ("http://127.0.0.1:9/r.git", "--upload-pack=touch /tmp/pwned"),
        ("http://127.0.0.1:9/r.git", "main"),
    ],
)
def test_hostile_urls_and_shas_are_refused_before_git_runs(url: str, sha: str, dest: Path) -> None:
    with pytest.raises(GitError) as caught:
        enter(checkout(url, sha, dest, timeout_s=30, max_bytes=LIMIT))
    assert not caught.value.transient
    assert not dest.exists() or list(dest.iterdir()) == []


def test_diff_of_two_commits(git_server: GitServer, repo: str, dest: Path) -> None:
    before = git_server.head("recipes")
    git_server.commit("recipes", {"recipes/walrus/meta.yml": "name: walrus\n"})
    after = git_server.commit(
        "recipes",
        {
            "recipes/seal/meta.yml": None,
            "recipes/seal2/meta.yml": "name: seal\n",  # same content: a rename
            "recipes/walrus/recipe.sh": "echo hi\n",
        },
    )
    assert before is not None
    with fetch_trees(repo, after, dest, timeout_s=30, max_bytes=LIMIT, extra_shas=[before]) as t:
        assert t.changed_paths(before) == [
            "recipes/seal/meta.yml",
            "recipes/seal2/meta.yml",
            "recipes/walrus/meta.yml",
            "recipes/walrus/recipe.sh",
        ]
        assert t.changed_paths(after) == []
        assert not (t.work / "recipes").exists()  # compared on trees: no file checked out


def test_new_branch_compares_with_the_default_branch(
    git_server: GitServer, repo: str, dest: Path
) -> None:
    main = git_server.commit("recipes", {"recipes/walrus/meta.yml": "name: walrus\n"})
    git_server.commit(
        "recipes", {"recipes/seal/meta.yml": "name: seal 2\n"}, branch="feature", parent=main
    )
    feature = git_server.commit(
        "recipes", {"recipes/orca/meta.yml": "name: orca\n"}, branch="feature"
    )

    with fetch_trees(
        repo, feature, dest, timeout_s=30, max_bytes=LIMIT, extra_shas=["0" * 40, main]
    ) as trees:
        assert trees.changed_paths(main) == [
            "recipes/orca/meta.yml",
            "recipes/seal/meta.yml",
        ]


def test_force_pushed_away_base_is_skipped_then_reported(
    git_server: GitServer, repo: str, dest: Path
) -> None:
    old = git_server.commit("recipes", {"recipes/walrus/meta.yml": "name: walrus\n"})
    rewritten = git_server.commit(
        "recipes", {"recipes/orca/meta.yml": "name: orca\n"}, parent=None
    )  # force-push of unrelated history
    git_server.forget_unreachable("recipes")
    with fetch_trees(repo, rewritten, dest, timeout_s=30, max_bytes=LIMIT, extra_shas=[old]) as t:
        t.check_out()
        assert (t.work / "recipes/orca/meta.yml").exists()
        with pytest.raises(GitError, match="not in the checkout") as caught:
            t.changed_paths(old)
    assert not caught.value.transient


def enter(manager: AbstractContextManager[Path]) -> None:
    """Make the checkout and leave it at once: for tests that expect it to fail."""
    with manager:
        pass


@pytest.fixture
def git_argv_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a `git` first on PATH that logs its arguments, then runs the real git."""
    bin_dir, log = tmp_path / "bin", tmp_path / "argv.log"
    bin_dir.mkdir()
    real = next(
        Path(d) / "git" for d in os.environ["PATH"].split(os.pathsep) if (Path(d) / "git").is_file()
    )
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_a_credential_is_never_sent_over_plain_http_to_another_host(tmp_path: Path) -> None:
    with (
        pytest.raises(GitError) as caught,
        checkout(
            "http://git.example.org/recipes.git",
            "a" * 40,
            tmp_path,
            token="ghs_secret",
            token_user=USER,
            timeout_s=5,
            max_bytes=1 << 20,
        ),
    ):
        pass
    assert "plain http" in str(caught.value)
    assert "ghs_secret" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


def test_only_the_directories_asked_for_are_fetched_and_checked_out(
    git_server: GitServer, repo: str, dest: Path
) -> None:
    before = git_server.head("recipes")
    data = os.urandom(2 * 1024 * 1024)  # incompressible: its bytes would show in .git
    odd = "recipes/o*d [x]"  # glob and pattern characters in a name are only a name
    after = git_server.commit(
        "recipes",
        {"data/big.bin": data, f"{odd}/meta.yml": "name: odd\n", "recipes/od/meta.yml": "x\n"},
    )
    assert before is not None
    with fetch_trees(repo, after, dest, timeout_s=30, max_bytes=LIMIT, extra_shas=[before]) as t:
        assert t.changed_paths(before) == [
            "data/big.bin",
            f"{odd}/meta.yml",
            "recipes/od/meta.yml",
        ]
        t.check_out([odd, "recipes/seal"])
        files = sorted(p.relative_to(t.work).as_posix() for p in t.work.rglob("*") if p.is_file())
        assert [f for f in files if not f.startswith(".git/")] == [
            f"{odd}/meta.yml",
            "recipes/seal/meta.yml",
        ]
        fetched = sum(p.stat().st_size for p in (t.work / ".git").rglob("*") if p.is_file())
        assert fetched < len(data) // 4
