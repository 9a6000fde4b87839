"""Run a command as a container with `readOnlyRootFilesystem` and one `emptyDir` would:
in a mount namespace of its own where every mount is read-only (the kernel's own file
systems aside) except one directory. Needs root (or CAP_SYS_ADMIN) and `unshare`."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

_SCRIPT = r"""
set -eu
scratch=$1; shift
findmnt -rno TARGET | sort -r | while read -r target; do
  case "$target" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue;; esac
  mount -o remount,bind,ro "$target"
done
mount --bind "$scratch" "$scratch"
mount -o remount,bind,rw "$scratch"
exec "$@"
"""


def read_only_root(writable: Path, *command: str) -> list[str]:
    """`command` with only `writable` writable; the command keeps the process id (exec)."""
    return [
        *("unshare", "--mount", "--propagation", "private"),
        *("sh", "-c", _SCRIPT, "sh", str(writable), *command),
    ]


def why_no_read_only_root() -> str | None:
    """None when `read_only_root` works here, else what stops it."""
    with tempfile.TemporaryDirectory() as scratch:
        probe = subprocess.run(
            read_only_root(Path(scratch), "touch", str(Path(scratch) / "ok")),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    return None if probe.returncode == 0 else probe.stderr.strip() or "unshare failed"
