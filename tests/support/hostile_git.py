"""Hostile git servers for tests: what an attacker's server can answer a git client.

One aiohttp app (in its own thread, like `GitServer`) in one of these modes:

- `refs`: the smart-HTTP ref advertisement (`gitprotocol-http`, protocol v0) never
  ends: `<sha> refs/heads/noise-<n>` lines, as fast as the client reads them.
- `noise`: a proxy to a real `GitServer` that, in the answer to a fetch
  (protocol v2, `gitprotocol-v2` "packfile" section), sends `noise_bytes` of
  side-band 2 progress (`remote: ...` on the client's stderr), then a pack
  whose header is garbage (git: "protocol error: bad pack header").
- `redirect`: every request is answered `302` to the same path on `target`.
- `silent`: requests are accepted and never answered.

`requests` lists what arrived (method, path, and whether an Authorization
header came with it, never its value), so a test can tell where a token went.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from tests.support.gitserver import GitHttpServer

_ADVERTISEMENT = "application/x-git-upload-pack-advertisement"
_FORWARDED = ("Content-Type", "Content-Encoding", "Git-Protocol", "Authorization", "Accept")


def pkt(payload: bytes) -> bytes:
    """One pkt-line (`gitprotocol-common`): four hex digits of length, then the payload."""
    return f"{len(payload) + 4:04x}".encode() + payload


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    authorized: bool


class HostileGit(GitHttpServer):
    def __init__(self, mode: str, *, upstream: str = "", target: str = "") -> None:
        self.mode = mode
        self.upstream = upstream  # `noise`: the real server behind it
        self.target = target  # `redirect`: where to
        self.noise_bytes = 50 * 1024 * 1024
        self._requests: list[SeenRequest] = []

    @property
    def requests(self) -> list[SeenRequest]:
        assert self._server is not None
        return self._server.call(lambda: list(self._requests))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._requests.append(
            SeenRequest(request.method, request.path, "Authorization" in request.headers)
        )
        if self.mode == "silent":
            await asyncio.Event().wait()
        if self.mode == "redirect":
            raise web.HTTPFound(self.target + request.path_qs)
        if self.mode == "refs":
            return await self._endless_refs(request)
        return await self._noisy_proxy(request)

    async def _endless_refs(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": _ADVERTISEMENT})
        await response.prepare(request)
        await response.write(pkt(b"# service=git-upload-pack\n") + b"0000")
        sha = b"1" * 40
        await response.write(pkt(sha + b" HEAD\0multi_ack side-band-64k\n"))
        index = 0
        with contextlib.suppress(ConnectionError):
            while True:
                batch = b"".join(
                    pkt(sha + f" refs/heads/noise-{index + n}\n".encode()) for n in range(500)
                )
                index += 500
                await response.write(batch)
        return response

    async def _noisy_proxy(self, request: web.Request) -> web.StreamResponse:
        headers = {k: request.headers[k] for k in _FORWARDED if k in request.headers}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as upstream,
        ):
            response = web.StreamResponse(
                status=upstream.status,
                headers={"Content-Type": upstream.headers.get("Content-Type", "")},
            )
            await response.prepare(request)
            fetch = request.method == "POST" and request.path.endswith("/git-upload-pack")
            with contextlib.suppress(ConnectionError):
                if fetch:
                    await self._poison(upstream.content, response)
                else:
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                await response.write_eof()
        return response

    async def _poison(self, answer: aiohttp.StreamReader, response: web.StreamResponse) -> None:
        """Relay pkt-lines up to the "packfile" section, then noise, then a garbage pack."""
        while True:
            head = await answer.readexactly(4)
            length = int(head, 16)
            payload = await answer.readexactly(length - 4) if length > 4 else b""
            await response.write(head + payload)
            if payload == b"packfile\n":
                break
            if length == 0 and not payload:  # a flush: ls-refs and the like end here
                return
        line = pkt(b"\2" + b"remote: counting objects, please wait" + b"." * 900 + b"\n")
        sent = 0
        while sent < self.noise_bytes:
            await response.write(line * 64)
            sent += len(line) * 64
        await response.write(pkt(b"\1" + b"PACX\0\0\0\2garbage") + b"0000")


@contextlib.contextmanager
def hostile_git(mode: str, **kwargs: str) -> Iterator[HostileGit]:
    server = HostileGit(mode, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
