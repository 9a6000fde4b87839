"""Where an API submission's recipe lives: `github://org:repo@ref/path` or a git URL.

Pure parsing. `github://` is the form ogdc-runner accepts (fsspec's GitHub
URL); a plain git URL takes the ref and the recipe path from the request.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_GITHUB = re.compile(
    r"^github://(?P<org>[A-Za-z0-9][A-Za-z0-9-]{0,38}):(?P<repo>[A-Za-z0-9._-]{1,100})"
    r"@(?P<ref>[^/]+)/(?P<path>.+)$"
)
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class BadSource(ValueError):
    """The recipe location cannot be used; the message says what to write instead."""


def on_forge(repository: str) -> bool:
    """Whether a run's repository is an `owner/name` of the configured forge (not a bare URL)."""
    return "://" not in repository


@dataclass(frozen=True)
class RecipeSource:
    """A recipe directory in a git repository at a ref (branch, tag or commit)."""

    repository: str  # "org/repo" on the configured GitHub, else the URL without credentials
    clone_url: str
    ref: str
    path: str


def without_credentials(url: str) -> str:
    """`url` without any user name or password, so that none is ever stored or shown."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def web_base(api_url: str) -> str:
    """GitHub's web address for its API address (github.com, or an Enterprise host)."""
    parts = urlsplit(api_url)
    if parts.netloc == "api.github.com":
        return "https://github.com"
    return f"{parts.scheme}://{parts.netloc}"


def _clean_path(path: str) -> str:
    normal = posixpath.normpath(path.strip("/"))
    if normal in ("", "."):
        raise BadSource(f"recipe path {path!r} must name a directory inside the repository")
    if any(part == ".." for part in path.split("/")):
        raise BadSource(f"recipe path {path!r} must not contain '..'")
    return normal


def parse_source(recipe_path: str, ref: str | None, path: str | None, api_url: str) -> RecipeSource:
    """Understand `recipe_path` (and `ref`/`path` for git URLs); `BadSource` says what is wrong."""
    github = _GITHUB.match(recipe_path)
    if github:
        repository = f"{github['org']}/{github['repo']}"
        return RecipeSource(
            repository=repository,
            clone_url=f"{web_base(api_url)}/{repository}.git",
            ref=ref or github["ref"],
            path=_clean_path(github["path"]),
        )
    parts = urlsplit(recipe_path)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadSource(
            "recipe_path must be github://ORG:REPO@REF/PATH or an http(s) git URL "
            "(with `ref` and `path`)"
        )
    if parts.username or parts.password:
        raise BadSource("recipe_path must not carry credentials")
    repo_path, _, inline_path = parts.path.partition("//")
    recipe_dir = path or inline_path
    if not recipe_dir:
        raise BadSource("give the recipe's directory in `path` (e.g. recipes/seal-tags)")
    if not ref:
        raise BadSource("give the branch, tag or commit in `ref`")
    clone_url = f"{parts.scheme}://{parts.netloc}{repo_path}"
    segments = repo_path.strip("/").removesuffix(".git").split("/")
    on_github = f"{parts.scheme}://{parts.netloc}" == web_base(api_url) and len(segments) == 2
    if on_github and all(_NAME.match(s) for s in segments):
        repository = "/".join(segments)
    else:
        repository = clone_url
    return RecipeSource(repository, clone_url, ref, _clean_path(recipe_dir))
