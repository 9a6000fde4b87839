"""Resolving a recipe's inputs to files: url params directly, DataONE packages through Solr.

DataONE packages are listed with the member node's Solr API
(`{DATAONE_NODE_URL}/v2/query/solr/`, the query, fields and paging ogdc-runner
uses) and filtered by the param's `filename` glob. This needs the network, so
it runs at submission time or when asked (`validate-recipe --resolve`), never
during plain validation. Every failure is a `DataOneError` naming the package
and the pattern.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from ogdc_hooks.recipes.model import (
    DataOneInput,
    InputFile,
    Recipe,
    UrlInput,
    safe_filename,
    url_filename,
)

PAGE_SIZE = 50
MAX_OBJECTS = 10_000
MAX_ANSWER_BYTES = 16 * 1024 * 1024
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=30)
FIELDS = "id,title,formatId,size,fileName,abstract,description"


class DataOneError(Exception):
    """A DataONE input could not be resolved; the message says which and why."""


@dataclass(frozen=True)
class DataObject:
    """One data object of a package: its identifier and file name."""

    identifier: str
    filename: str


def solr_query(identifier: str) -> str:
    """The Solr query for the data objects (not the metadata) of one package."""
    escaped = identifier.replace("\\", "\\\\").replace('"', '\\"')
    return f'resourceMap:"{escaped}" AND -formatType:METADATA'


def object_url(node_url: str, identifier: str) -> str:
    return f"{node_url.rstrip('/')}/v2/object/{quote(identifier, safe='')}"


def glob_matches(pattern: str, name: str) -> bool:
    """`*` and `?` wildcards, case-insensitive, on the whole name; nothing else is special."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, name, re.IGNORECASE | re.DOTALL) is not None


def _describe(param: DataOneInput) -> str:
    pattern = f"filename {param.filename!r}" if param.filename else "all files"
    return f"DataONE package {param.dataset_identifier!r} ({pattern})"


def select(param: DataOneInput, objects: list[DataObject]) -> list[DataObject]:
    """The objects the param asks for, by name; an empty choice is an error."""
    if not objects:
        raise DataOneError(f"{_describe(param)}: the package has no data objects")
    if param.filename is None:
        return objects
    chosen = [obj for obj in objects if glob_matches(param.filename, obj.filename)]
    if not chosen:
        names = ", ".join(obj.filename for obj in objects[:10])
        more = f" and {len(objects) - 10} more" if len(objects) > 10 else ""
        raise DataOneError(
            f"{_describe(param)}: no file name matches the pattern; the package has {names}{more}"
        )
    return chosen


def parse_page(answer: Any) -> tuple[int, list[DataObject]]:
    """`numFound` and the objects of one Solr answer; `ValueError` when it is not one."""
    body = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(body, dict):
        raise ValueError("the answer has no 'response' object")
    found, docs = body.get("numFound"), body.get("docs")
    if not isinstance(found, int) or not isinstance(docs, list):
        raise ValueError("the answer's 'response' lacks numFound or docs")
    objects = []
    for doc in docs:
        identifier = doc.get("id") if isinstance(doc, dict) else None
        filename = doc.get("fileName") if isinstance(doc, dict) else None
        if not isinstance(identifier, str) or not isinstance(filename, str):
            raise ValueError(f"object {identifier!r} has no id or fileName")
        try:
            objects.append(DataObject(identifier, safe_filename(filename)))
        except ValueError as err:
            raise ValueError(f"object {identifier!r}: {err}") from None
    return found, objects


async def list_package(
    session: aiohttp.ClientSession,
    node_url: str,
    param: DataOneInput,
    request_timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT,
) -> list[DataObject]:
    """Every data object of the param's package, page by page, sorted by file name."""
    url = f"{node_url.rstrip('/')}/v2/query/solr/"
    objects: dict[str, DataObject] = {}
    start = 0
    while True:
        params = {
            "q": solr_query(param.dataset_identifier),
            "fl": FIELDS,
            "rows": str(PAGE_SIZE),
            "start": str(start),
            "wt": "json",
        }
        try:
            answer = await _get_json(session, url, params, request_timeout)
            found, page = parse_page(answer)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise DataOneError(
                f"{_describe(param)}: cannot reach the DataONE node {node_url}: "
                f"{unreachable_reason(err)}"
            ) from None
        except ValueError as err:
            raise DataOneError(
                f"{_describe(param)}: the DataONE node {node_url} gave a bad answer: {err}"
            ) from None
        if found > MAX_OBJECTS:
            raise DataOneError(
                f"{_describe(param)}: the package has {found} objects, "
                f"more than the {MAX_OBJECTS} a recipe may use"
            )
        before = len(objects)
        objects.update((obj.identifier, obj) for obj in page)
        if not page or len(objects) >= found:
            break
        if len(objects) == before:
            raise DataOneError(
                f"{_describe(param)}: the DataONE node {node_url} gave a bad answer: "
                f"paging at {start} repeated objects"
            )
        start += PAGE_SIZE
    return sorted(objects.values(), key=lambda obj: (obj.filename, obj.identifier))


def unreachable_reason(err: Exception) -> str:
    """Why a node could not be asked, in words (aiohttp's own text names sockets and flags)."""
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return "its host name could not be resolved (is this machine offline?)"
    if isinstance(err, aiohttp.ClientConnectorError):
        number = err.os_error.errno
        return f"the connection failed ({os.strerror(number) if number else 'refused'})"
    if isinstance(err, TimeoutError):
        return "it did not answer in time"
    return f"the connection broke ({type(err).__name__})"


async def _get_json(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str],
    request_timeout: aiohttp.ClientTimeout,
) -> Any:
    async with session.get(url, params=params, timeout=request_timeout) as response:
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise ValueError("the answer is too large")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError("the answer is not JSON") from None


async def resolve_inputs(
    recipe: Recipe,
    node_url: str,
    session: aiohttp.ClientSession,
    *,
    request_timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT,
) -> list[InputFile]:
    """The recipe's input files in param order: one per url param, one per chosen object of
    each dataone param, none for pvc_mount params (they are mounted, not fetched).

    Each package is listed once, however many params name it.
    """
    listings: dict[str, list[DataObject]] = {}
    files: list[InputFile] = []
    for param in recipe.meta.input.params:
        if isinstance(param, UrlInput):
            files.append(InputFile(param.value, url_filename(param.value)))
        elif isinstance(param, DataOneInput):
            if param.dataset_identifier not in listings:
                listings[param.dataset_identifier] = await list_package(
                    session, node_url, param, request_timeout
                )
            chosen = select(param, listings[param.dataset_identifier])
            files.extend(
                InputFile(object_url(node_url, obj.identifier), obj.filename) for obj in chosen
            )
    return _distinct(files)


# Where a placeholder points: a reserved name (RFC 2606) that never reaches a real host.
PLACEHOLDER_NODE = "https://dataone.invalid/unresolved"


def placeholder_inputs(recipe: Recipe) -> tuple[list[InputFile], int]:
    """The inputs without asking DataONE: url inputs as they are, one marked placeholder per
    DataONE param (`UNRESOLVED-...`), and how many params were left unresolved."""
    files: list[InputFile] = []
    unresolved = 0
    for param in recipe.meta.input.params:
        if isinstance(param, UrlInput):
            files.append(InputFile(param.value, url_filename(param.value)))
        elif isinstance(param, DataOneInput):
            unresolved += 1
            label = re.sub(r"[^A-Za-z0-9._-]+", "_", param.filename or "all-files")
            url = f"{PLACEHOLDER_NODE}/{quote(param.dataset_identifier, safe='')}"
            files.append(InputFile(url, f"UNRESOLVED-{unresolved}-{label}"))
    return files, unresolved


def _distinct(files: list[InputFile]) -> list[InputFile]:
    """Each file once; two different files saved under one name would overwrite each other."""
    unique = list(dict.fromkeys(files))
    by_name: dict[str, InputFile] = {}
    for file in unique:
        other = by_name.setdefault(file.filename, file)
        if other != file:
            raise DataOneError(
                f"two inputs would be saved as {file.filename!r} ({other.url} and {file.url}); "
                "narrow the filename patterns"
            )
    return unique
