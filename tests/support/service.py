"""The real service as a subprocess, for end-to-end tests.

    with Service(env) as service:          # starts, waits for /readyz
        httpx-or-aiohttp.get(service.url + "/user", ...)
        assert "listening" in service.log_text()
    # leaving the block stops it with SIGTERM (and SIGKILL if it hangs)

`Service(env)` runs `python -m ogdc_hooks serve --host 127.0.0.1 --port 0` with
the variables of this test process minus every `OGDC_*`/`ARGO_*`/`GITHUB_*`/`FORGEJO_*`
setting, plus `env`; `command` replaces `python -m ogdc_hooks` (an installed
`ogdc-hooks`, behind a wrapper) and `cwd` the directory it runs in. The server
picks a free port and logs it, so parallel services never race for a port. Its
stdout and stderr go to one file, readable at any time with `log_text()`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

# Variables the service reads; the test's own environment must not leak into it.
_SETTING_PREFIXES = ("OGDC_", "ARGO_", "GITHUB_", "FORGEJO_", "DATAONE_", "API_ROOT_PATH")
# The line the service logs once it listens, with its address.
LISTENING = re.compile(r"listening.*?url[=\":\s]+\"?(http://[0-9.]+:\d+)")

DEFAULT_SECRETS = {
    "OGDC_JWT_SECRET_KEY": "test-jwt-secret-key-that-is-long-enough-for-hs256",
    "OGDC_ADMIN_PASSWORD": "admin-password-for-tests",
}


class ServiceError(AssertionError):
    """The service did not start or stop as expected; the message holds its log."""


def service_env(env: Mapping[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SETTING_PREFIXES)}
    return {**base, **env}


class Service:
    def __init__(
        self,
        env: Mapping[str, str],
        *,
        start_timeout: float = 120.0,
        command: Sequence[str] = (sys.executable, "-m", "ogdc_hooks"),
        cwd: Path | None = None,
    ) -> None:
        self.env = service_env(env)
        self.command = list(command)
        self.cwd = cwd
        prefix = env.get("API_ROOT_PATH", "").strip("/")
        self.root_path = f"/{prefix}" if prefix else ""  # where API_ROOT_PATH puts the routes
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        handle, name = tempfile.mkstemp(prefix="ogdc-service-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)

    @property
    def url(self) -> str:
        """Where the API answers: the server address plus API_ROOT_PATH."""
        return self.base_url + self.root_path

    @property
    def port(self) -> str:
        """The port the server picked (known once it logs that it listens)."""
        return self.base_url.rsplit(":", 1)[1]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, object]]:
        """The log as JSON objects (with OGDC_LOG_FORMAT=json); other lines are skipped."""
        lines = []
        for line in self.log_text().splitlines():
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict):
                lines.append(document)
        return lines

    def memory(self) -> dict[str, int]:
        """The process's resident memory now (`VmRSS`) and at its peak (`VmHWM`), in bytes,
        from /proc/<pid>/status."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {name: int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM")}

    def launch(self) -> None:
        """Start the process without waiting for it (see `wait_ready`)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.command, "serve", "--host", "127.0.0.1", "--port", "0"],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _fail(self, why: str) -> ServiceError:
        return ServiceError(f"{why}\n--- service log ---\n{self.log_text()}")

    def wait_ready(self) -> None:
        """Wait until the service has logged its address and /readyz answers 200."""
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self._fail(f"the service exited with {self.process.returncode}")
            if not self.base_url:
                found = LISTENING.search(self.log_text())
                self.base_url = found.group(1) if found else ""
            if self.base_url and self.is_ready():
                return
            time.sleep(0.1)
        raise self._fail(f"the service was not ready within {self.start_timeout}s")

    def is_ready(self) -> bool:
        """Whether /readyz answers 200 now."""
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> Service:
        self.launch()
        self.wait_ready()
        return self

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to end by itself; its exit code."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self._fail(f"the service did not exit within {timeout}s") from None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for a graceful exit; its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.stop()
            finally:
                self.kill()
        if exc_type is not None:  # pytest shows what the test printed: the service's side
            print(f"--- service log ({self.url}) ---\n{self.log_text()}")
        self.log_path.unlink(missing_ok=True)
