"""Git tests fetch from a real smart-HTTP git server (`git http-backend`)."""

from __future__ import annotations

from tests.support.gitserver import git_server  # noqa: F401  (fixture)
