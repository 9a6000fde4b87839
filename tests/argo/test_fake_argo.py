"""The fake Argo Server itself answers like the real one (raw HTTP, no client of ours)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest

from tests.argo.conftest import workflow
from tests.fakes.argo import FakeArgo


async def call(
    session: aiohttp.ClientSession,
    fake: FakeArgo,
    method: str,
    path: str,
    *,
    body: Any = None,
    token: str | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token or fake.token}"}
    async with session.request(method, fake.url + path, headers=headers, json=body) as response:
        return response.status, await response.json()


async def create(session: aiohttp.ClientSession, fake: FakeArgo, wf: Any) -> tuple[int, Any]:
    return await call(
        session, fake, "POST", f"/api/v1/workflows/{fake.namespace}", body={"workflow": wf}
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda wf: wf["metadata"].pop("generateName"), "name or generateName is required"),
        (lambda wf: wf["metadata"].update(name="x" * 64), "must not be more than 63 characters"),
        (lambda wf: wf["metadata"].update(namespace="other"), "does not match the namespace"),
        (lambda wf: wf["spec"].pop("entrypoint"), "spec.entrypoint is required"),
        (lambda wf: wf["metadata"]["labels"].update({"bad key": "v"}), "name part must"),
        (lambda wf: wf["metadata"]["labels"].update({"k": "v" * 64}), "a valid label must"),
        (lambda wf: wf["metadata"]["labels"].update({"k": "-v"}), "a valid label must"),
        (lambda wf: wf["metadata"]["labels"].update({"Bad_Prefix/k": "v"}), "prefix part"),
        (lambda wf: wf["metadata"].update(generateName="Upper-"), "RFC 1123 subdomain"),
        (lambda wf: wf["spec"].update(templates="nope"), "is not of type 'array'"),
        (lambda wf: wf.update(kind="CronWorkflow"), "'Workflow' was expected"),
    ],
)
async def test_invalid_workflows_are_400_with_code_and_message(
    fake_argo: FakeArgo, session: aiohttp.ClientSession, change: Any, message: str
) -> None:
    wf = workflow()
    change(wf)
    status, body = await create(session, fake_argo, wf)
    assert status == 400
    assert body["code"] == 3
    assert message in body["message"]
    assert fake_argo.created == []


async def test_body_without_workflow_is_400(
    fake_argo: FakeArgo, session: aiohttp.ClientSession
) -> None:
    status, body = await call(
        session,
        fake_argo,
        "POST",
        f"/api/v1/workflows/{fake_argo.namespace}",
        body={"wf": workflow()},
    )
    assert (status, body["message"]) == (400, "workflow body not specified")


async def test_explicit_name_is_kept_and_conflicts_are_409(
    fake_argo: FakeArgo, session: aiohttp.ClientSession
) -> None:
    wf = workflow()
    wf["metadata"] = {"name": "fixed-name"}
    assert (await create(session, fake_argo, wf))[0] == 200
    status, body = await create(session, fake_argo, wf)
    assert (status, body["code"]) == (409, 6)


async def test_long_generate_name_is_cut_to_leave_room_for_the_suffix(
    fake_argo: FakeArgo, session: aiohttp.ClientSession
) -> None:
    wf = workflow()
    wf["metadata"]["generateName"] = "a" * 70 + "-"
    status, body = await create(session, fake_argo, wf)
    assert status == 200
    assert re.fullmatch(r"a{58}[a-z0-9]{5}", body["metadata"]["name"])


async def test_missing_or_wrong_token_is_401_with_code_16(
    fake_argo: FakeArgo, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{fake_argo.url}/api/v1/workflows/{fake_argo.namespace}") as response:
        assert response.status == 401
        assert (await response.json())["code"] == 16
    status, _ = await call(
        session, fake_argo, "GET", f"/api/v1/workflows/{fake_argo.namespace}", token="nope"
    )
    assert status == 401
    assert [r.token_ok for r in fake_argo.requests] == [False, False]


async def test_bad_selector_is_400(fake_argo: FakeArgo, session: aiohttp.ClientSession) -> None:
    status, body = await call(
        session,
        fake_argo,
        "GET",
        f"/api/v1/workflows/{fake_argo.namespace}?listOptions.labelSelector=a+in+(b)",
    )
    assert (status, body["code"]) == (400, 3)


async def test_stream_reports_leaving_the_selection_as_deleted(
    fake_argo: FakeArgo, session: aiohttp.ClientSession
) -> None:
    _, created = await create(session, fake_argo, workflow())
    name = created["metadata"]["name"]
    selector = "workflows.argoproj.io/completed!=true"
    url = f"{fake_argo.url}/api/v1/workflow-events/{fake_argo.namespace}"
    headers = {"Authorization": f"Bearer {fake_argo.token}"}
    async with session.get(
        url, headers=headers, params={"listOptions.labelSelector": selector}
    ) as response:
        lines = response.content

        async def next_event() -> dict[str, Any]:
            while not (line := await asyncio.wait_for(lines.readline(), 10)).strip():
                pass
            return json.loads(line)["result"]

        assert (await next_event())["type"] == "ADDED"
        fake_argo.set_phase(name, "Running")
        assert (await next_event())["type"] == "MODIFIED"
        fake_argo.set_phase(name, "Succeeded")
        gone = await next_event()
        assert gone["type"] == "DELETED"
        assert gone["object"]["status"]["phase"] == "Running"  # the last state it matched in


async def test_artifact_files_route_serves_the_same_artifact(
    fake_argo: FakeArgo, session: aiohttp.ClientSession
) -> None:
    _, created = await create(session, fake_argo, workflow())
    name = created["metadata"]["name"]
    node = fake_argo.add_output_artifact(name, b"zip")
    url = (
        f"{fake_argo.url}/artifact-files/{fake_argo.namespace}/workflow/{name}/{node}"
        "/outputs/published_zip"
    )
    async with session.get(url, headers={"Authorization": f"Bearer {fake_argo.token}"}) as response:
        assert (response.status, await response.read()) == (200, b"zip")
    wrong = url.replace("published_zip", "other")
    async with session.get(wrong, headers={"Authorization": f"Bearer {fake_argo.token}"}) as resp:
        assert resp.status == 404


async def test_a_completed_workflow_is_archived_and_its_ttl_leaves_the_archived_copy(
    fake_argo: FakeArgo, session: aiohttp.ClientSession
) -> None:
    _, running = await create(session, fake_argo, workflow(**{"ogdc/run-id": "r1"}))
    _, other = await create(session, fake_argo, workflow(**{"ogdc/run-id": "r2"}))
    name = running["metadata"]["name"]
    with pytest.raises(ValueError, match="only deletes completed workflows"):
        fake_argo.expire(name)
    fake_argo.set_phase(name, "Succeeded", message="all done")
    fake_argo.set_phase(other["metadata"]["name"], "Failed")
    assert fake_argo.workflow(name)["metadata"]["labels"][
        "workflows.argoproj.io/workflow-archiving-status"
    ] == ("Archived")
    fake_argo.expire(name)
    status, _ = await call(session, fake_argo, "GET", f"/api/v1/workflows/qgnet/{name}")
    assert status == 404

    query = "namespace=qgnet&listOptions.labelSelector=ogdc/run-id%3Dr1"
    status, listed = await call(session, fake_argo, "GET", f"/api/v1/archived-workflows?{query}")
    assert status == 200
    [item] = listed["items"]
    assert item["metadata"]["name"] == name
    assert item["metadata"]["labels"]["workflows.argoproj.io/workflow-archiving-status"] == (
        "Persisted"
    )
    assert item["status"]["phase"] == "Succeeded"
    assert item["status"]["message"] == "all done"
    assert "nodes" not in item["status"] and "templates" not in item["spec"]
    query = "namespace=qgnet&listOptions.labelSelector=ogdc/run-id%3Dnone"
    _, empty = await call(session, fake_argo, "GET", f"/api/v1/archived-workflows?{query}")
    assert empty["items"] is None


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 403, 'not allowed to list workflows in namespace ""'),
        ("namespace=other", 403, 'namespace "other"'),
        ("namespace=qgnet&listOptions.continue=x", 400, "listOptions.continue must be int"),
        ("namespace=qgnet&listOptions.labelSelector=a%3D%3D%3Db", 400, "unable to parse"),
    ],
)
async def test_the_archive_refuses_what_argo_refuses(
    fake_argo: FakeArgo, session: aiohttp.ClientSession, query: str, status: int, message: str
) -> None:
    answer, body = await call(session, fake_argo, "GET", f"/api/v1/archived-workflows?{query}")
    assert (answer, body["code"]) == (status, 7 if status == 403 else 3)
    assert message in body["message"]


async def test_stop_sets_the_shutdown_and_the_controller_fails_the_workflow(
    fake_argo: FakeArgo, session: aiohttp.ClientSession
) -> None:
    _, created = await create(session, fake_argo, workflow())
    name = created["metadata"]["name"]
    fake_argo.set_phase(name, "Running")
    path = f"/api/v1/workflows/qgnet/{name}/stop"
    status, answer = await call(session, fake_argo, "PUT", path, body={"name": name})
    assert status == 200
    assert answer["spec"]["shutdown"] == "Stop"
    stopped = fake_argo.workflow(name)
    assert stopped["status"]["phase"] == "Failed"
    assert stopped["status"]["message"] == "Stopped with strategy 'Stop'"
    assert [wf["metadata"]["name"] for wf in fake_argo.archived()] == [name]

    status, refused = await call(session, fake_argo, "PUT", path, body={"name": name})
    assert (status, refused["code"]) == (500, 13)
    assert refused["message"] == (
        f'cannot shutdown a completed workflow: workflow: "{name}", namespace: "qgnet"'
    )
    path = "/api/v1/workflows/qgnet/no-such/stop"
    status, missing = await call(session, fake_argo, "PUT", path, body={})
    assert (status, missing["code"]) == (404, 5)


async def test_stop_needs_the_patch_verb(session: aiohttp.ClientSession) -> None:
    fake = FakeArgo(forbidden=("patch",)).start()
    try:
        _, created = await create(session, fake, workflow())
        name = created["metadata"]["name"]
        path = f"/api/v1/workflows/qgnet/{name}/stop"
        status, refused = await call(session, fake, "PUT", path, body={"name": name})
        assert (status, refused["code"]) == (403, 7)
        assert 'cannot patch resource "workflows"' in refused["message"]
        assert "shutdown" not in fake.workflow(name)["spec"]
    finally:
        fake.stop()
