"""PostgreSQL restarted in the middle of a stream of deliveries: deliveries during the outage
get 503, the service's pools reconnect by themselves (no process restarts), and every push
accepted is processed exactly once (one workflow per pushed commit).

The server is a private cluster of this test's own (initdb and pg_ctl on a port of its own),
so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.fakes.argo import FakeArgo
from tests.fakes.github import AppKey, FakeGitHub
from tests.pipeline.conftest import META, SCRIPT, push_payload, running_stack, service_env
from tests.support.gitserver import GitServer
from tests.support.postgres import PrivateCluster
from tests.support.waiting import wait_for

PUSHES = 16
REDELIVERY_PAUSE = 0.1  # how soon the stream sends a refused delivery again (GitHub: by hand)
STORED = {(202, "accepted"), (200, "already received")}


@pytest.mark.slow
async def test_a_database_restart_under_deliveries_loses_nothing_and_doubles_nothing(
    private_cluster: PrivateCluster,
    github: FakeGitHub,
    fake_argo: FakeArgo,
    github_app_key: AppKey,
    git_server: GitServer,
) -> None:
    server = private_cluster.server
    database = await asyncio.to_thread(server.create_database)
    env = {
        **service_env(server.env(database), github, fake_argo, github_app_key),
        # every push changes the same recipe and must become its own workflow
        "OGDC_CANCEL_SUPERSEDED": "false",
    }
    async with running_stack(env, github, fake_argo, git_server) as stack:
        assert stack.service.process is not None
        pid = stack.service.process.pid
        tip = git_server.commit("recipes", {"README.md": "x\n"})
        payloads = []
        for index in range(PUSHES):
            after = git_server.commit(
                "recipes",
                {
                    "recipes/sea-ice/meta.yml": META,
                    "recipes/sea-ice/recipe.sh": f"echo {index}\n{SCRIPT}",
                },
            )
            payloads.append(push_payload(git_server, before=tip, after=after))
            tip = after
        answers: list[tuple[str, int]] = []  # (pushed commit, status), in the order answered

        stopped = asyncio.Event()

        async def stream() -> None:
            """Deliver every push, one after another, again while it is refused; the second
            half only once the server is down (else it might all be over before)."""
            for number, payload in enumerate(payloads):
                if number == PUSHES // 2:
                    await stopped.wait()
                while True:
                    status, body = await stack.deliver(payload, delivery=f"push-{number}")
                    answers.append((payload["after"], status))
                    if status != 503:
                        # 200: stored by a try whose answer was lost as the server went down
                        assert (status, body["detail"]) in STORED, body
                        break
                    await asyncio.sleep(REDELIVERY_PAUSE)

        def counted(status: int) -> int:
            if delivering.done():  # over before its time: say why
                delivering.result()
                raise AssertionError(f"the stream ended early: {answers}")
            return sum(1 for _, answered in answers if answered == status)

        delivering = asyncio.create_task(stream())
        try:
            await wait_for(lambda: counted(202) >= 5, what="deliveries accepted before")
            await asyncio.to_thread(private_cluster.stop)  # every session ends
            stopped.set()
            await wait_for(lambda: counted(503) >= 3, what="deliveries refused during")
            await asyncio.to_thread(private_cluster.start)
            await asyncio.wait_for(delivering, 120)
        finally:
            delivering.cancel()
        accepted = [commit for commit, status in answers if status != 503]
        assert sorted(accepted) == sorted(p["after"] for p in payloads)  # each once, none lost

        await wait_for(
            lambda: len(fake_argo.created) >= PUSHES, within=120, what=f"{PUSHES} workflows"
        )
        await wait_for(stack.settled, within=60, what="every job to be done")
        commits = Counter(
            fake_argo.workflow(name)["metadata"]["annotations"]["ogdc/commit"]
            for name in fake_argo.created
        )
        assert commits == Counter(accepted)  # accepted = processed, none twice
        assert stack.service.process.poll() is None
        assert stack.service.process.pid == pid  # the same process throughout
        assert await asyncio.to_thread(stack.service.is_ready)
        assert "job listener" in stack.failed_tasks()  # cut with the server, logged, back
