"""Where an API submission's recipe lives: `<forge kind>://org:repo@ref/path` or a git URL.

Pure parsing. `github://` is the form ogdc-runner accepts (fsspec's GitHub
URL), and every configured forge kind gets the same form; a plain git URL takes
the ref and the recipe path from the request.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ogdc_hooks.forges.base import Forge
from ogdc_hooks.redact import without_credentials

__all__ = ["BadSource", "RecipeSource", "on_forge", "parse_source", "without_credentials"]

# `<forge kind>://ORG:REPO@REF/PATH`, e.g. github://nsidc:recipes@main/recipes/seal-tags
_SHORT = re.compile(
    r"^(?P<kind>[a-z][a-z0-9]{0,19})://(?P<org>[A-Za-z0-9][A-Za-z0-9._-]{0,38})"
    r":(?P<repo>[A-Za-z0-9._-]{1,100})@(?P<ref>[^/]+)/(?P<path>.+)$"
)
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class BadSource(ValueError):
    """The recipe location cannot be used; the message says what to write instead."""


def on_forge(repository: str) -> bool:
    """Whether a run's repository is an `owner/name` of its forge (not a bare URL)."""
    return "://" not in repository


@dataclass(frozen=True)
class RecipeSource:
    """A recipe directory in a git repository at a ref (branch, tag or commit)."""

    forge: str  # the forge host; for a plain URL, the URL's host
    repository: str  # "org/repo" on a configured forge, else the URL without credentials
    clone_url: str
    ref: str
    path: str


def _clean_path(path: str) -> str:
    normal = posixpath.normpath(path.strip("/"))
    if normal in ("", "."):
        raise BadSource(f"recipe path {path!r} must name a directory inside the repository")
    if any(part == ".." for part in path.split("/")):
        raise BadSource(f"recipe path {path!r} must not contain '..'")
    return normal


def parse_source(
    recipe_path: str, ref: str | None, path: str | None, forges: Iterable[Forge]
) -> RecipeSource:
    """Understand `recipe_path` (and `ref`/`path` for git URLs); `BadSource` says what is wrong.

    `<kind>://ORG:REPO@REF/PATH` (the form ogdc-runner accepts, fsspec's GitHub URL) names
    a repository of the configured forge of that kind; a git URL on a configured forge's
    web address is that forge's `owner/name`.
    """
    known = list(forges)
    short = _SHORT.match(recipe_path)
    forge = next((f for f in known if short and f.kind == short["kind"]), None)
    if short and forge is not None:
        repository = f"{short['org']}/{short['repo']}"
        return RecipeSource(
            forge=forge.host,
            repository=repository,
            clone_url=f"{forge.web_url}/{repository}.git",
            ref=ref or short["ref"],
            path=_clean_path(short["path"]),
        )
    parts = urlsplit(recipe_path)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        kinds = "".join(f"{f.kind}://ORG:REPO@REF/PATH or " for f in known)
        raise BadSource(f"recipe_path must be {kinds}an http(s) git URL (with `ref` and `path`)")
    if parts.username or parts.password:
        raise BadSource("recipe_path must not carry credentials")
    repo_path, _, inline_path = parts.path.partition("//")
    recipe_dir = path or inline_path
    if not recipe_dir:
        raise BadSource("give the recipe's directory in `path` (e.g. recipes/seal-tags)")
    if not ref:
        raise BadSource("give the branch, tag or commit in `ref`")
    origin = f"{parts.scheme}://{parts.netloc}"
    clone_url = f"{origin}{repo_path}"
    segments = repo_path.strip("/").removesuffix(".git").split("/")
    forge = next((f for f in known if f.web_url == origin), None)
    if forge is not None and len(segments) == 2 and all(_NAME.match(s) for s in segments):
        return RecipeSource(forge.host, "/".join(segments), clone_url, ref, _clean_path(recipe_dir))
    host = forge.host if forge is not None else parts.netloc.lower()
    return RecipeSource(host, clone_url, clone_url, ref, _clean_path(recipe_dir))
