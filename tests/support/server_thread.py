"""Serve an aiohttp application on 127.0.0.1 from its own thread and event loop.

Fakes and test servers run this way so that they keep answering while a test
blocks (waiting for a subprocess, a blocking git call) or runs another loop.
Tests change a fake's state through `call`, which runs on the server's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class ServerThread:
    """One application, one thread; `url` is known once `start` returns (https with a
    `ssl_context`)."""

    def __init__(
        self, app: web.Application, ssl_context: ssl.SSLContext | None = None, **runner_kwargs: Any
    ) -> None:
        self._app = app
        self._ssl_context = ssl_context
        self._runner_kwargs = {"shutdown_timeout": 1.0, **runner_kwargs}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=30)
        return self.url

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self._app, **self._runner_kwargs)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl_context)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"{'https' if self._ssl_context else 'http'}://{host}:{port}"

    async def _shutdown(self) -> None:
        """Close the server, then end handlers still running (a stalled answer, a stream)."""
        if self._runner is not None:
            await self._runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop and return its result (state changes from tests)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as err:
                future.set_exception(err)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
