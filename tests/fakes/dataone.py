"""A fake DataONE member node: the Solr query endpoint, as a real aiohttp application.

`GET /v2/query/solr/` answers like a member node's Solr API for the one kind
of query ogdc-hooks makes: `q=resourceMap:"<pid>" AND -formatType:METADATA`,
with `fl`, `rows`, `start` and `wt=json` checked the way Solr would (a bad
parameter is a 400 with Solr's error body). Documents are paged by `start` and
`rows`, and only the fields `fl` asks for are returned. Tests add packages and
can make the node fail, answer garbage, stall, or ignore `start`.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

QUERY = re.compile(r'^resourceMap:"((?:[^"\\]|\\.)*)" AND -formatType:METADATA$')
KNOWN_FIELDS = {
    "id",
    "title",
    "formatId",
    "formatType",
    "size",
    "fileName",
    "abstract",
    "description",
    "resourceMap",
}
MAX_ROWS = 1000


@dataclass
class FakeDataOne:
    """The node's state and knobs; `app()` serves it."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    fail_status: int | None = None
    garbage: bool = False
    stall_seconds: float = 0.0
    ignore_start: bool = False

    def add_package(self, package: str, filenames: list[str], *, metadata: bool = True) -> None:
        """A package of data objects named `filenames`, plus its metadata document (which
        the query must exclude)."""
        for index, name in enumerate(filenames):
            self.documents.append(
                {
                    "id": f"urn:uuid:{package}/{index}",
                    "fileName": name,
                    "title": name,
                    "formatId": "application/octet-stream",
                    "formatType": "DATA",
                    "size": 100 + index,
                    "resourceMap": [package],
                }
            )
        if metadata:
            self.documents.append(
                {
                    "id": f"doi:{package}/metadata",
                    "fileName": "metadata.xml",
                    "formatId": "https://eml.ecoinformatics.org/eml-2.2.0",
                    "formatType": "METADATA",
                    "resourceMap": [package],
                }
            )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v2/query/solr/", self._solr)
        return app

    async def _solr(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append(query)
        if self.stall_seconds:
            await asyncio.sleep(self.stall_seconds)
        if self.fail_status is not None:
            return web.Response(status=self.fail_status, text="node is down")
        if self.garbage:
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        try:
            package, fields, rows, start = _parse(query)
        except ValueError as err:
            return web.json_response(
                {"responseHeader": {"status": 400}, "error": {"msg": str(err), "code": 400}},
                status=400,
            )
        matching = [
            doc
            for doc in self.documents
            if package in doc["resourceMap"] and doc["formatType"] != "METADATA"
        ]
        first = 0 if self.ignore_start else start
        docs = [
            {key: doc[key] for key in fields if key in doc}
            for doc in matching[first : first + rows]
        ]
        return web.json_response(
            {
                "responseHeader": {"status": 0, "QTime": 1, "params": query},
                "response": {"numFound": len(matching), "start": start, "docs": docs},
            }
        )


def _parse(query: dict[str, str]) -> tuple[str, list[str], int, int]:
    if query.get("wt") != "json":
        raise ValueError(f"wt must be json, got {query.get('wt')!r}")
    match = QUERY.match(query.get("q", ""))
    if match is None:
        raise ValueError(f"unexpected query {query.get('q')!r}")
    package = re.sub(r"\\(.)", r"\1", match.group(1))
    fields = query.get("fl", "").split(",")
    if "id" not in fields or "fileName" not in fields or not set(fields) <= KNOWN_FIELDS:
        raise ValueError(f"undefined field in fl={query.get('fl')!r}")
    try:
        rows, start = int(query["rows"]), int(query["start"])
    except (KeyError, ValueError):
        raise ValueError("rows and start must be integers") from None
    if not 0 < rows <= MAX_ROWS or start < 0:
        raise ValueError(f"rows must be 1..{MAX_ROWS} and start at least 0")
    return package, fields, rows, start
