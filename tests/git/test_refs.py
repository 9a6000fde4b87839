"""Resolving refs over git's smart HTTP against a real git server (`git http-backend`)."""

from __future__ import annotations

import aiohttp
import pytest

from ogdc_hooks.checkout import GitError
from ogdc_hooks.refs import resolve_ref
from tests.support.gitserver import GitServer

USER = "x-access-token"  # the user name GitHub wants with a token
TOKEN = "ghs_s3cr3tInstallationToken0123456789"


async def lookup(url: str, ref: str, token: str | None = None, **limits: int) -> str | None:
    async with aiohttp.ClientSession() as session:
        return await resolve_ref(session, url, ref, token, token_user=USER, timeout_s=10, **limits)


@pytest.fixture
def repo(git_server: GitServer) -> str:
    git_server.create_repo("recipes")
    git_server.commit("recipes", {"recipes/seal/meta.yml": "name: seal\n", "README.md": "hi\n"})
    return git_server.clone_url("recipes")


async def test_resolve_ref(git_server: GitServer, repo: str) -> None:
    main = git_server.head("recipes")
    assert main is not None
    release = git_server.commit("recipes", {"VERSION": "1\n"}, branch="release")
    git_server.tag("recipes", "v1", main)
    git_server.tag("recipes", "v2", release, annotated=True)

    assert await lookup(repo, "main") == main
    assert await lookup(repo, "HEAD") == main
    assert await lookup(repo, "refs/heads/release") == release
    assert await lookup(repo, "release") == release
    assert await lookup(repo, "v1") == main
    assert await lookup(repo, "v2") == release  # the commit, not the tag object
    assert await lookup(repo, "nope") is None
    assert await lookup(repo, "A" * 40) == "a" * 40  # a sha needs no lookup


async def test_resolve_ref_errors(git_server: GitServer, repo: str) -> None:
    git_server.token = TOKEN
    with pytest.raises(GitError, match="refused access") as refused:
        await lookup(repo, "main", "ghs_wrongTokenValue000000000")
    assert not refused.value.transient
    assert await lookup(repo, "main", TOKEN) == git_server.head("recipes")
    git_server.fail_next(1, 503)
    with pytest.raises(GitError) as down:
        await lookup(repo, "main", TOKEN)
    assert down.value.transient
    assert TOKEN not in str(down.value)
    with pytest.raises(GitError, match="not found") as missing:
        await lookup(git_server.clone_url("nothere"), "main", TOKEN)
    assert not missing.value.transient


async def test_refs_are_counted_against_the_limit(git_server: GitServer, repo: str) -> None:
    main = git_server.head("recipes")
    assert main is not None
    for index in range(5):
        git_server.tag("recipes", f"t{index}", main)
    assert await lookup(repo, "main", max_refs=10) == main
    with pytest.raises(GitError, match=r"more than 3 refs.*OGDC_GIT_MAX_REFS") as caught:
        await lookup(repo, "main", max_refs=3)
    assert not caught.value.transient
