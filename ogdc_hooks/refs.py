"""Which commit a ref names on a git server, read from git's smart-HTTP ref advertisement.

Asked with aiohttp on the event loop, not with `git ls-remote`: git holds every
ref a server advertises before it prints one, so a hostile server that
advertises refs without end grows it without bound. Here the advertisement is
read one pkt-line at a time, every ref is counted against a limit, only the
candidates are kept, and the whole lookup has one time limit. As for clones,
the credentials go to the clone URL itself and nowhere else: redirects are
refused. Protocol: git's `gitprotocol-http` (smart service discovery) and
`gitprotocol-common` (pkt-line).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiohttp

from ogdc_hooks.checkout import GitError, Remote, remote_of

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_ADVERTISEMENT = "application/x-git-upload-pack-advertisement"
_MAX_PKT = 65520  # a pkt-line's largest length, its 4 length digits included
DEFAULT_MAX_REFS = 100_000


def _candidates(ref: str) -> list[str]:
    """The ref names `ref` may mean, in git's order: tag, then branch; `HEAD` as is."""
    if ref == "HEAD" or ref.startswith("refs/"):
        return [ref]
    return [f"refs/tags/{ref}", f"refs/heads/{ref}"]


async def resolve_ref(
    session: aiohttp.ClientSession,
    clone_url: str,
    ref: str,
    token: str | None = None,
    *,
    token_user: str | None = None,
    timeout_s: float,
    max_refs: int = DEFAULT_MAX_REFS,
) -> str | None:
    """The commit sha `ref` names on the server (a full sha is returned as is); None if no
    such ref. `HEAD` is the default branch. Raises `GitError` when the server cannot be
    asked or answers what no git server would."""
    if _SHA.fullmatch(ref.lower()):
        return ref.lower()
    remote = remote_of(clone_url, token, token_user)
    what = f"looking up {ref!r} in {remote.url}"
    wanted = _candidates(ref)
    try:
        async with asyncio.timeout(timeout_s):
            found = await _advertised(session, remote, what, wanted, max_refs)
    except TimeoutError:
        raise GitError(
            f"{what}: the server did not answer within {timeout_s:g} s "
            "(OGDC_GIT_LOOKUP_TIMEOUT_SECONDS); try again later",
            transient=True,
        ) from None
    except aiohttp.ClientError as err:
        raise GitError(
            f"{what}: cannot reach the server ({type(err).__name__}); try again later",
            transient=True,
        ) from None
    for name in wanted:
        # An annotated tag names a tag object; `^{}` is the commit it points at.
        if commit := found.get(f"{name}^{{}}") or found.get(name):
            return commit
    return None


async def _advertised(
    session: aiohttp.ClientSession, remote: Remote, what: str, wanted: list[str], max_refs: int
) -> dict[str, str]:
    """The advertised shas of the `wanted` refs (and their peeled `^{}` forms)."""
    headers = {"User-Agent": "git/ogdc-hooks", "Accept": _ADVERTISEMENT}
    if remote.authorization:
        headers["Authorization"] = remote.authorization
    keep = {*wanted, *(f"{name}^{{}}" for name in wanted)}
    async with session.get(
        remote.url.rstrip("/") + "/info/refs",
        params={"service": "git-upload-pack"},
        headers=headers,
        allow_redirects=False,
    ) as answer:
        _check_answer(answer, what)
        found: dict[str, str] = {}
        count = 0
        async for line in _pkt_lines(answer.content, what):
            sha, _, rest = line.partition(" ")
            name = rest.split("\0", 1)[0].rstrip("\n")
            count += 1
            if count % 100 == 0:
                await asyncio.sleep(0)  # a fast server must not keep the loop to itself
            if count > max_refs:
                raise GitError(
                    f"{what}: the server advertises more than {max_refs} refs, the limit "
                    "(OGDC_GIT_MAX_REFS); it is not a repository ogdc-hooks can use",
                    transient=False,
                )
            if name in keep and _SHA.fullmatch(sha):
                found[name] = sha
        return found


def _check_answer(answer: aiohttp.ClientResponse, what: str) -> None:
    status = answer.status
    if status in (401, 403):
        raise GitError(
            f"{what}: the server refused access (HTTP {status}); is the token allowed to read it?",
            transient=False,
        )
    if status == 404:
        raise GitError(f"{what}: repository not found (HTTP 404)", transient=False)
    if 300 <= status < 400:
        raise GitError(
            f"{what}: the server answered with a redirect (HTTP {status}), which is not "
            "followed (the token must not go elsewhere); give the repository's own address",
            transient=False,
        )
    if status >= 500 or status == 429:
        raise GitError(
            f"{what}: the server failed (HTTP {status}); try again later", transient=True
        )
    if status != 200 or answer.content_type != _ADVERTISEMENT:
        raise GitError(
            f"{what}: the server is not a git smart-HTTP server (HTTP {status}, "
            f"{answer.content_type})",
            transient=False,
        )


async def _pkt_lines(content: aiohttp.StreamReader, what: str) -> AsyncIterator[str]:
    """The ref lines of an advertisement: after the `# service=` line and its flush, up to
    the next flush packet."""
    flushes = 0
    while flushes < 2:
        try:
            length = int(await content.readexactly(4), 16)
            payload = await content.readexactly(length - 4) if length > 4 else b""
        except (ValueError, asyncio.IncompleteReadError):
            raise GitError(
                f"{what}: the server's answer is not a valid ref advertisement", transient=False
            ) from None
        if length == 0:
            flushes += 1
            continue
        if not 4 < length <= _MAX_PKT:
            raise GitError(f"{what}: the server sent a malformed packet", transient=False)
        if flushes == 1:
            yield payload.decode("utf-8", "replace")
