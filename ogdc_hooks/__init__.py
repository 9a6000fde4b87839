"""ogdc-hooks: push webhooks from recipe repositories to Argo Workflows to commit checks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ogdc-hooks")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
