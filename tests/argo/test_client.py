"""The Argo client against the fake Argo Server, over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from ogdc_hooks.argo.client import (
    ArgoClient,
    ArgoNotFoundError,
    ArgoPermanentError,
    ArgoTransientError,
    WorkflowEvent,
)
from ogdc_hooks.argo.phases import progress_of
from ogdc_hooks.jobs.errors import PermanentError, TransientError
from ogdc_hooks.runstate import RunState
from ogdc_hooks.settings import load_settings
from tests.argo.conftest import workflow
from tests.fakes.argo import FakeArgo
from tests.support.tls import private_ca


async def next_event(events: AsyncIterator[WorkflowEvent]) -> WorkflowEvent:
    return await asyncio.wait_for(anext(events), timeout=10)


async def test_submit_creates_from_generate_name_and_get_returns_it(
    argo: ArgoClient, fake_argo: FakeArgo
) -> None:
    name = await argo.submit(workflow())

    assert re.fullmatch(r"seal-tags-shell-[a-z0-9]{5}", name)
    assert fake_argo.created == [name]
    sent = next(r for r in fake_argo.requests if r.method == "POST")
    assert sent.path == f"/api/v1/workflows/{fake_argo.namespace}"
    assert sent.body["workflow"]["metadata"]["generateName"] == "seal-tags-shell-"
    got = await argo.get(name)
    assert got["metadata"]["namespace"] == fake_argo.namespace
    assert progress_of(got).state is RunState.SUBMITTED


async def test_two_submissions_get_two_names(argo: ArgoClient, fake_argo: FakeArgo) -> None:
    first, second = await argo.submit(workflow()), await argo.submit(workflow())
    assert first != second
    assert fake_argo.count("POST", "/api/v1/workflows/") == 2


async def test_list_by_labels_finds_only_matching_workflows(argo: ArgoClient) -> None:
    mine = await argo.submit(workflow(**{"ogdc/run-id": "41"}))
    await argo.submit(workflow(**{"ogdc/run-id": "42"}))

    found = await argo.list_by_labels({"ogdc/run-id": "41"})
    assert [wf["metadata"]["name"] for wf in found] == [mine]
    assert await argo.list_by_labels("ogdc/run-id=43") == []  # Argo answers items: null


async def test_watch_sends_current_workflows_then_changes(
    argo: ArgoClient, fake_argo: FakeArgo
) -> None:
    name = await argo.submit(workflow(**{"ogdc/run-id": "7"}))
    await argo.submit(workflow(**{"ogdc/run-id": "8"}))
    events = argo.watch({"ogdc/run-id": "7"})

    added = await next_event(events)
    assert (added.type, added.name) == ("ADDED", name)

    fake_argo.set_phase(name, "Running")
    running = await next_event(events)
    assert running.type == "MODIFIED"
    assert progress_of(running.workflow).state is RunState.RUNNING

    fake_argo.set_phase(
        name, "Failed", message="child failed", failed_nodes={"step-1": "Error (exit code 2)"}
    )
    failed = progress_of((await next_event(events)).workflow)
    assert failed.state is RunState.FAILED
    assert failed.message == "child failed"
    assert [(s.name, s.message) for s in failed.failed_steps] == [("step-1", "Error (exit code 2)")]

    fake_argo.delete(name)
    deleted = await next_event(events)
    assert (deleted.type, deleted.name) == ("DELETED", name)

    fake_argo.close_streams()
    with pytest.raises(StopAsyncIteration):
        await next_event(events)


async def test_watch_survives_keepalives(argo: ArgoClient, fake_argo: FakeArgo) -> None:
    name = await argo.submit(workflow())
    events = argo.watch({"ogdc/run-id": "17"})
    assert (await next_event(events)).type == "ADDED"
    await asyncio.sleep(fake_argo.keepalive_s * 3)  # several blank keep-alive lines go by
    fake_argo.set_phase(name, "Succeeded")
    assert progress_of((await next_event(events)).workflow).state is RunState.SUCCEEDED
    await events.aclose()


async def test_schema_invalid_workflow_is_permanent_with_argos_message(
    argo: ArgoClient, fake_argo: FakeArgo
) -> None:
    bad = workflow()
    bad["spec"]["templates"][0]["container"]["command"] = "sh -c true"

    with pytest.raises(ArgoPermanentError) as caught:
        await argo.submit(bad)

    assert caught.value.status == 400
    assert isinstance(caught.value, PermanentError)
    assert "spec.templates[0].container.command: 'sh -c true' is not of type 'array'" in str(
        caught.value
    )
    assert fake_argo.created == []


async def test_undefined_entrypoint_is_permanent(argo: ArgoClient) -> None:
    bad = workflow()
    bad["spec"]["entrypoint"] = "missing"
    with pytest.raises(ArgoPermanentError, match="template name 'missing' undefined"):
        await argo.submit(bad)


@pytest.mark.parametrize("status", [503, 500, 429])
async def test_server_errors_are_transient_then_it_works(
    argo: ArgoClient, fake_argo: FakeArgo, status: int
) -> None:
    fake_argo.fail_next(1, status)
    with pytest.raises(ArgoTransientError) as caught:
        await argo.submit(workflow())
    assert caught.value.status == status
    assert isinstance(caught.value, TransientError)
    assert fake_argo.created == []

    assert await argo.submit(workflow())


async def test_dropped_connection_is_transient(argo: ArgoClient, fake_argo: FakeArgo) -> None:
    fake_argo.drop_next(1)
    with pytest.raises(ArgoTransientError, match="cannot reach the Argo Server"):
        await argo.submit(workflow())
    fake_argo.drop_next(2)  # aiohttp retries an idempotent GET once on a reused connection
    with pytest.raises(ArgoTransientError, match="cannot reach the Argo Server"):
        await argo.list_by_labels({"ogdc/run-id": "1"})
    assert fake_argo.created == []


async def test_slow_answer_is_a_transient_timeout(
    session: aiohttp.ClientSession, fake_argo: FakeArgo
) -> None:
    impatient = ArgoClient(
        session, fake_argo.url, fake_argo.namespace, fake_argo.token, request_timeout_s=0.2
    )
    fake_argo.slow_next(1, 2.0)
    with pytest.raises(ArgoTransientError, match="no answer in time"):
        await impatient.get("anything")


@contextmanager
def socket_that_refuses() -> Iterator[str]:
    """A local URL on which nothing listens (the port is reserved, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


async def test_unreachable_server_is_transient(session: aiohttp.ClientSession) -> None:
    with socket_that_refuses() as url:
        client = ArgoClient(session, url, "qgnet", "tok-123456", request_timeout_s=2)
        with pytest.raises(ArgoTransientError) as caught:
            await client.get("x")
    assert "tok-123456" not in str(caught.value)


async def test_bad_token_is_permanent_and_never_shown(
    session: aiohttp.ClientSession, fake_argo: FakeArgo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-s3cr3t-token-value"
    client = ArgoClient(session, fake_argo.url, fake_argo.namespace, secret)

    with pytest.raises(ArgoPermanentError) as caught:
        await client.submit(workflow())
    with pytest.raises(ArgoPermanentError) as watched:
        await anext(client.watch({"a": "b"}))

    assert caught.value.status == watched.value.status == 401
    assert "token not valid" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), str(watched.value), caplog.text):
        assert secret not in text
    assert caught.value.__cause__ is None
    assert fake_argo.created == []


async def test_other_namespace_is_forbidden(
    session: aiohttp.ClientSession, fake_argo: FakeArgo
) -> None:
    client = ArgoClient(session, fake_argo.url, "elsewhere", fake_argo.token)
    with pytest.raises(ArgoPermanentError, match="forbidden") as caught:
        await client.submit(workflow())
    assert caught.value.status == 403


async def test_token_printed_by_argo_cli_with_bearer_prefix_works(
    session: aiohttp.ClientSession, fake_argo: FakeArgo
) -> None:
    client = ArgoClient(session, fake_argo.url, fake_argo.namespace, f"Bearer {fake_argo.token}")
    assert await client.submit(workflow())


async def test_missing_workflow_is_not_found(argo: ArgoClient) -> None:
    with pytest.raises(ArgoNotFoundError, match='"gone-abcde" not found'):
        await argo.get("gone-abcde")


async def test_output_url_points_at_the_downloadable_artifact(
    argo: ArgoClient, fake_argo: FakeArgo, session: aiohttp.ClientSession
) -> None:
    name = await argo.submit(workflow())
    with pytest.raises(ArgoNotFoundError, match="no output artifact 'published_zip'"):
        await argo.output_url(name)
    node = fake_argo.add_output_artifact(name, b"PK zip bytes")
    fake_argo.set_phase(name, "Succeeded")

    url = await argo.output_url(name)

    assert url == f"{fake_argo.url}/artifacts/{fake_argo.namespace}/{name}/{node}/published_zip"
    headers = {"Authorization": f"Bearer {fake_argo.token}"}
    async with session.get(url, headers=headers) as response:
        assert response.status == 200
        assert await response.read() == b"PK zip bytes"
    async with session.get(url) as response:
        assert response.status == 401


async def test_watch_outage_is_transient(argo: ArgoClient, fake_argo: FakeArgo) -> None:
    fake_argo.fail_next(1, 503)
    with pytest.raises(ArgoTransientError):
        await anext(argo.watch({"a": "b"}))


async def test_an_argo_server_with_a_private_ca_is_trusted_through_argo_ca_file(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    ca_file, server_context = private_ca(tmp_path)
    fake = FakeArgo(ssl_context=server_context).start()
    try:
        assert fake.url.startswith("https://127.0.0.1:")
        env = {
            "OGDC_DATA_DIR": str(tmp_path),
            "ARGO_WORKFLOWS_SERVICE_URL": fake.url,
            "ARGO_NAMESPACE": fake.namespace,
            "ARGO_TOKEN": fake.token,
        }
        untrusted = ArgoClient.from_settings(load_settings(env), session)
        with pytest.raises(ArgoTransientError, match="certificate verify failed") as refused:
            await untrusted.submit(workflow())
        assert fake.token not in str(refused.value)
        assert fake.created == []

        trusted = ArgoClient.from_settings(
            load_settings({**env, "ARGO_CA_FILE": str(ca_file)}), session
        )
        name = await trusted.submit(workflow())
        assert fake.created == [name]
    finally:
        fake.stop()


async def test_retry_resets_only_the_failed_nodes_and_argo_refuses_other_phases(
    argo: ArgoClient, fake_argo: FakeArgo
) -> None:
    name = await argo.submit(workflow())
    fake_argo.set_phase(name, "Pending")
    with pytest.raises(ArgoPermanentError, match="Cannot retry a workflow in phase Pending"):
        await argo.retry(name)
    ids = fake_argo.set_nodes(name, {"part-0": "Succeeded", "part-1": "Failed"})
    fake_argo.set_phase(name, "Failed", message="child failed")
    kept = fake_argo.workflow(name)["status"]["nodes"][ids["part-0"]]

    await argo.retry(name)

    retried = fake_argo.workflow(name)
    sent = [r for r in fake_argo.requests if r.path.endswith("/retry")][-1]
    assert sent.body["restartSuccessful"] is False
    assert retried["status"]["phase"] == "Running" and "message" not in retried["status"]
    assert retried["status"]["nodes"][ids["part-0"]] == kept  # succeeded: not run again
    assert ids["part-1"] not in retried["status"]["nodes"]  # failed: the controller reruns it
    assert "workflows.argoproj.io/completed" not in retried["metadata"]["labels"]
    with pytest.raises(ArgoPermanentError, match="Cannot retry a workflow in phase Running"):
        await argo.retry(name)
    fake_argo.set_phase(name, "Succeeded")
    with pytest.raises(ArgoPermanentError, match="To retry a succeeded workflow"):
        await argo.retry(name)
    with pytest.raises(ArgoNotFoundError):
        await argo.retry("no-such-workflow")
