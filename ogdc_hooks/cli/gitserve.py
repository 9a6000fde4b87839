"""Serving git repositories over smart HTTP: `git http-backend` as a CGI program under aiohttp.

What Apache or nginx would do in front of git: each request runs the CGI
program, its body streamed in and its answer streamed out. `ogdc-hooks dev
send-push` serves a local repository with it, so the service can clone the
pushed commit as it would from a forge; the tests' git server is built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

# Request headers the CGI program reads, and the variables it reads them from.
_CGI_HEADERS = (
    ("Content-Length", "CONTENT_LENGTH"),
    ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
    ("Git-Protocol", "HTTP_GIT_PROTOCOL"),
)


def cgi_environment(request: web.Request, project_root: Path) -> dict[str, str]:
    """The CGI variables of one request; every repository under the root may be read, any
    object reachable in it may be fetched by id, and partial clone is served (as GitHub allows)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(project_root),
        "GIT_CONFIG_NOSYSTEM": "1",
        # Partial clone (`--filter=blob:none`, then the blobs wanted by id), as GitHub allows:
        # https://git-scm.com/docs/git-config#Documentation/git-config.txt-uploadpackallowFilter
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "uploadpack.allowReachableSHA1InWant",
        "GIT_CONFIG_VALUE_0": "true",
        "GIT_CONFIG_KEY_1": "uploadpack.allowFilter",
        "GIT_CONFIG_VALUE_1": "true",
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": request.path,
        "QUERY_STRING": request.query_string,
        "REQUEST_METHOD": request.method,
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "REMOTE_ADDR": request.remote or "127.0.0.1",
    }
    for header, variable in _CGI_HEADERS:
        if header in request.headers:
            env[variable] = request.headers[header]
    return env


async def http_backend(
    request: web.Request, env: Mapping[str, str], bytes_per_second: int | None = None
) -> web.StreamResponse:
    """Answer `request` with `git http-backend` run in `env` (see `cgi_environment`);
    `bytes_per_second` trickles the answer out, to imitate a slow server."""
    process = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    feeding = asyncio.create_task(_feed(request, process))
    try:
        return await _relay(request, process, bytes_per_second)
    finally:  # also when the server stops while a stalled answer is pending
        feeding.cancel()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.communicate()  # read what is left, so that the pipes close


async def _feed(request: web.Request, process: asyncio.subprocess.Process) -> None:
    assert process.stdin is not None
    with contextlib.suppress(ConnectionError):
        async for chunk in request.content.iter_any():
            process.stdin.write(chunk)
            await process.stdin.drain()
        process.stdin.close()


async def _relay(
    request: web.Request, process: asyncio.subprocess.Process, bytes_per_second: int | None
) -> web.StreamResponse:
    """The CGI answer: headers (and `Status:`) up to a blank line, then the body."""
    assert process.stdout is not None
    status, headers = 200, {}
    while line := (await process.stdout.readline()).decode("latin-1").strip():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.split()[0])
        elif key.lower() != "content-length":
            headers[key.strip()] = value.strip()
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):  # the client may hang up
        while chunk := await process.stdout.read(16 * 1024):
            await response.write(chunk)
            if bytes_per_second:
                await asyncio.sleep(len(chunk) / bytes_per_second)
        await response.write_eof()
    return response
