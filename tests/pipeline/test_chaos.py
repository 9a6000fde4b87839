"""Chaos: two replicas on one database take a stream of pushes from several repositories while
one replica is killed with SIGKILL (and started again), the database's sessions are
terminated, PostgreSQL restarts, and the fake GitHub and Argo fail for a while or drop the
workflow watch. Afterwards, waiting for states and never sleeping, the test checks:

- every delivery was stored once: answered 202, or 200 ("already received") to a
  redelivery after an earlier try stored it but its answer was lost. A delivery refused
  (503) or not answered (the replica died) is sent again, as GitHub's redelivery would;
- each stored push got exactly its runs, one per changed recipe;
- every run reached its final state (the one the test's Argo controller gave its workflow);
- every run has one check run on the fake GitHub whose accepted requests (the fake keeps
  every accepted body in `CheckRun.history`) hold exactly one final report (a body with a
  `conclusion`), and it is the last one, with the run's conclusion. The one exception
  is a report job taken over from the killed replica: killed after GitHub took the end
  and before the job was marked done, it cannot know, and sends the same end again
  (at least once, never another state after it);
- both replicas answer `/readyz` with 200 again.

The faults come in an order, and at moments (counted in deliveries answered), drawn from a
seeded random generator, so a failure replays the same way. The database is a private
cluster of the test's own, so restarting it disturbs no other test. Select it with
`pytest -m chaos`; `CHAOS_SEED=<n>` draws another order and other moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.fakes.argo import FakeArgo
from tests.fakes.github import AppKey, FakeGitHub, Fault
from tests.pipeline.conftest import (
    INSTALLATION_ID,
    KNOWN_LOGIN,
    META,
    SCRIPT,
    SECRET,
    push_payload,
    service_env,
)
from tests.support.gitserver import GitServer
from tests.support.postgres import PostgresServer, PrivateCluster
from tests.support.service import DEFAULT_SECRETS, Service
from tests.support.waiting import wait_for
from tests.webhooks.signing import signed_delivery

SEED = int(os.environ.get("CHAOS_SEED", "20261202"))
REPOSITORIES = ("qgnet/chaos-a", "qgnet/chaos-b", "qgnet/chaos-c")
RECIPES = ("ice", "snow", "melt", "firn")  # melt and firn workflows fail, the others succeed
FAILING = ("melt", "firn")
PUSHES = 18
FAULTS = 6  # kill, terminate, restart, GitHub fails, Argo fails, watch dropped
BETWEEN_FAULTS = (1, 3)  # deliveries answered between two faults, drawn from this range
STORED = {(202, "accepted"), (200, "already received")}
CONCLUSIONS = {"succeeded": "success", "failed": "failure"}

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.timeout(240)]


@dataclass(frozen=True)
class Push:
    """One push: its delivery id, payload and the recipes it changed."""

    guid: str
    repository: str
    payload: dict[str, Any]
    recipes: frozenset[str]


def _pushes(git: GitServer, rng: random.Random) -> list[Push]:
    """`PUSHES` pushes spread over the repositories, each changing one to three recipes."""
    tips = {}
    for full_name in REPOSITORIES:
        name = full_name.split("/")[1]
        git.create_repo(name)
        tips[full_name] = git.commit(name, {"README.md": "chaos\n"})
    pushes = []
    for number in range(PUSHES):
        full_name = rng.choice(REPOSITORIES)
        name = full_name.split("/")[1]
        changed = frozenset(rng.sample(RECIPES, rng.randint(1, 3)))
        files = {}
        for recipe in changed:
            files[f"recipes/{recipe}/meta.yml"] = META.replace("Sea Ice Test", f"Chaos {recipe}")
            files[f"recipes/{recipe}/recipe.sh"] = f"echo {number}\n{SCRIPT}"
        after = git.commit(name, files)
        payload = push_payload(git, before=tips[full_name], after=after)
        payload["repository"].update(full_name=full_name, name=name, clone_url=git.clone_url(name))
        payload["compare"] = f"https://github.com/{full_name}/compare/{after[:12]}"
        tips[full_name] = after
        pushes.append(Push(str(uuid.UUID(int=rng.getrandbits(128))), full_name, payload, changed))
    return pushes


@dataclass
class Replicas:
    """The two services; one is replaced by a new process after it is killed."""

    env: dict[str, str]
    services: list[Service] = field(default_factory=list)
    killed: list[Service] = field(default_factory=list)
    launched: list[Service] = field(default_factory=list)  # every process, to stop them all

    def _new(self) -> Service:
        service = Service(self.env)
        self.launched.append(service)
        return service

    async def start(self, count: int) -> None:
        self.services = [self._new() for _ in range(count)]
        await asyncio.gather(*(asyncio.to_thread(s.start) for s in self.services))

    def kill(self, index: int) -> None:
        """SIGKILL: the replica dies holding whatever it was doing."""
        self.services[index].kill()
        self.killed.append(self.services[index])

    async def restart(self, index: int) -> None:
        """A new process in the killed one's place (as its Deployment would start one)."""
        replacement = self._new()
        await asyncio.to_thread(replacement.start)
        self.services[index] = replacement

    def url(self, index: int) -> str:
        return self.services[index % len(self.services)].url

    async def stop(self) -> None:
        await asyncio.gather(
            *(asyncio.to_thread(s.stop) for s in self.launched if s.process is not None),
            return_exceptions=True,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {'killed' if s in self.killed else 'replica'} {s.url} ---\n{s.log_text()}"
            for s in self.launched
        )


@dataclass
class Stream:
    """Delivers the pushes one after another, each until it is stored, to replicas in turn;
    `allowed` holds it back so the faults fall between deliveries."""

    pushes: list[Push]
    replicas: Replicas
    session: aiohttp.ClientSession
    rng: random.Random
    allowed: int = 0
    answers: list[tuple[str, int, str]] = field(default_factory=list)  # guid, status, detail
    _more: asyncio.Event = field(default_factory=asyncio.Event)

    def allow(self, more: int) -> None:
        self.allowed = min(len(self.pushes), self.allowed + more)
        self._more.set()

    def count(self, status: int) -> int:
        return sum(1 for _, answered, _ in self.answers if answered == status)

    @property
    def stored(self) -> int:
        return sum(1 for answer in self.answers if answer[1:] in STORED)

    async def _send(self, push: Push, replica: int) -> tuple[int, str]:
        """One try; status 0 when the replica gave no answer (killed, or restarting)."""
        headers, body = signed_delivery(push.payload, SECRET, delivery=push.guid)
        try:
            async with self.session.post(
                self.replicas.url(replica) + "/webhooks/github", data=body, headers=headers
            ) as answer:
                return answer.status, (await answer.json()).get("detail", "")
        except (aiohttp.ClientError, TimeoutError) as err:
            return 0, type(err).__name__

    async def run(self) -> None:
        for number, push in enumerate(self.pushes):
            while number >= self.allowed:
                self._more.clear()
                await self._more.wait()
            replica = self.rng.randrange(2)
            while True:
                status, detail = await self._send(push, replica)
                self.answers.append((push.guid, status, detail))
                if status not in (0, 503):
                    assert (status, detail) in STORED, (status, detail)
                    break
                replica += 1  # GitHub's redelivery goes through the ingress: either replica
                await asyncio.sleep(0.2)  # pacing the redeliveries, as a person clicking would


@dataclass
class Controller:
    """Argo's workflow controller, as far as the test plays it: each workflow that appears
    runs and ends, failing for the recipes in FAILING."""

    argo: FakeArgo
    finished: set[str] = field(default_factory=set)

    def step(self) -> None:
        for workflow in self.argo.workflows():
            name = workflow["metadata"]["name"]
            if name in self.finished:
                continue
            recipe = workflow["metadata"]["annotations"]["ogdc/recipe-path"].split("/")[-1]
            self.argo.set_phase(name, "Failed" if recipe in FAILING else "Succeeded")
            self.finished.add(name)

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.step)
            await asyncio.sleep(0.3)  # the controller's own pace, not a wait for a state


@contextlib.asynccontextmanager
async def _background(*works: Awaitable[None]) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.ensure_future(work) for work in works]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _rows(server: PostgresServer, database: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(
        host=server.host, port=server.port, user=server.user, database=database
    )
    try:
        return list(await connection.fetch(query))
    finally:
        await connection.close()


async def _add_author(replicas: Replicas, session: aiohttp.ClientSession) -> None:
    form = {"username": "admin", "password": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"]}
    async with session.post(replicas.url(0) + "/token", data=form) as answer:
        token = (await answer.json())["access_token"]
    user = {"username": "author", "password": "a-long-password", "github_login": KNOWN_LOGIN}
    async with session.post(
        replicas.url(0) + "/create_user",
        data=user,
        headers={"Authorization": f"Bearer {token}"},
    ) as answer:
        assert answer.status == 201, await answer.text()


async def test_chaos_two_replicas_lose_no_push_and_report_each_end_once(
    private_cluster: PrivateCluster,
    github: FakeGitHub,
    fake_argo: FakeArgo,
    github_app_key: AppKey,
    git_server: GitServer,
) -> None:
    rng = random.Random(SEED)
    server = private_cluster.server
    database = await asyncio.to_thread(server.create_database)
    for full_name in REPOSITORIES:
        github.add_repository(full_name, installation_id=INSTALLATION_ID)
    env = {
        **service_env(server.env(database), github, fake_argo, github_app_key),
        "OGDC_RECONCILE_SECONDS": "0",  # redeliveries are the test's own here
        "OGDC_CANCEL_SUPERSEDED": "false",  # each push's run must end and be reported
    }
    replicas = Replicas(env)
    pushes = _pushes(git_server, rng)
    # the plan, drawn before anything runs: the replica killed, the deliveries between faults
    victim = rng.randrange(2)
    first, *gaps = (rng.randint(*BETWEEN_FAULTS) for _ in range(FAULTS + 1))
    timeout = aiohttp.ClientTimeout(total=30)
    await replicas.start(2)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await _add_author(replicas, session)
            stream = Stream(pushes, replicas, session, random.Random(SEED + 1))
            controller = Controller(fake_argo)
            async with _background(stream.run(), controller.run()) as (delivering, _):

                async def answered(count: int, what: str) -> None:
                    """Let `count` more pushes go and wait until they are stored."""
                    stream.allow(count)
                    target = stream.allowed

                    def done() -> bool:
                        if delivering.done():
                            delivering.result()  # an unexpected answer: raise it here
                        return stream.stored >= target

                    await wait_for(done, within=90, what=what)

                async def kill_a_replica() -> None:
                    index = victim
                    await asyncio.to_thread(replicas.kill, index)
                    restarting = asyncio.create_task(replicas.restart(index))
                    await answered(1, "a delivery while one replica is down")
                    await restarting

                async def terminate_sessions() -> None:
                    ended = await server.terminate(database)
                    assert ended > 0
                    await answered(1, "a delivery after the sessions were ended")

                async def restart_postgres() -> None:
                    await asyncio.to_thread(private_cluster.stop)
                    refused = stream.count(503) + stream.count(0)
                    stream.allow(2)
                    target = stream.allowed
                    await wait_for(
                        lambda: stream.count(503) + stream.count(0) >= refused + 2,
                        within=60,
                        what="deliveries refused while the database is down",
                    )
                    await asyncio.to_thread(private_cluster.start)
                    await wait_for(
                        lambda: stream.stored >= target, within=90, what="the refused deliveries"
                    )

                async def github_fails() -> None:
                    github.inject(Fault.server_error(502), times=4, path=r"/check-runs")
                    github.inject(Fault.dropped(), times=2, path=r"/check-runs", method="PATCH")
                    github.inject(Fault.too_many_requests(retry_after=2), path=r"/check-runs")

                async def argo_fails() -> None:
                    fake_argo.fail_next(4, status=503)
                    fake_argo.drop_next(2)

                async def watch_dropped() -> None:
                    fake_argo.close_streams()

                faults: list[Callable[[], Awaitable[None]]] = [
                    kill_a_replica,
                    terminate_sessions,
                    restart_postgres,
                    github_fails,
                    argo_fails,
                    watch_dropped,
                ]
                rng.shuffle(faults)
                await answered(first, "the first deliveries")
                for fault, gap in zip(faults, gaps, strict=True):
                    await fault()
                    await answered(gap, f"deliveries after {fault.__name__}")
                await answered(len(pushes), "every push stored")
                await asyncio.wait_for(delivering, 30)

                expected = {(p.guid, recipe) for p in pushes for recipe in p.recipes}

                async def all_final() -> list[asyncpg.Record] | None:
                    rows = await _rows(
                        server, database, "SELECT id, delivery_id, recipe, state FROM runs"
                    )
                    done = len(rows) >= len(expected) and all(
                        row["state"] in CONCLUSIONS for row in rows
                    )
                    return rows if done else None

                runs = await wait_for(all_final, within=120, what="every run to end")

                async def settled() -> bool:
                    rows = await _rows(
                        server,
                        database,
                        "SELECT count(*) AS n FROM jobs WHERE state IN ('queued', 'running')",
                    )
                    return rows[0]["n"] == 0

                await wait_for(settled, within=60, what="every job (reports too) to be done")

            # every delivery stored, none lost, none twice: 202 once, or (its answer lost with
            # a replica or the database) "already received" to a redelivery
            accepted = Counter(guid for guid, status, _ in stream.answers if status == 202)
            duplicates = {guid for guid, status, _ in stream.answers if status == 200}
            assert set(accepted) | duplicates == {p.guid for p in pushes}
            assert set(accepted.values()) == {1}
            rows = await _rows(server, database, "SELECT id FROM deliveries")
            assert sorted(row["id"] for row in rows) == sorted(p.guid for p in pushes)
            # exactly its runs: one per changed recipe, in its final state
            recipes = {str(row["id"]): row["recipe"].split("/")[-1] for row in runs}
            assert Counter((row["delivery_id"], recipes[str(row["id"])]) for row in runs) == (
                Counter(expected)
            )
            for row in runs:
                want = "failed" if recipes[str(row["id"])] in FAILING else "succeeded"
                assert row["state"] == want, dict(row)
            # one check run per run; one final report, the last one, with the run's conclusion
            checks = Counter(check.external_id for check in github.check_runs.values())
            assert checks == Counter(str(row["id"]) for row in runs)
            taken_over = {
                row["dedupe_key"].removeprefix("report:")
                for row in await _rows(
                    server,
                    database,
                    "SELECT dedupe_key FROM jobs WHERE kind = 'report' AND crashes > 0",
                )
            }
            for check in github.check_runs.values():
                state = next(r["state"] for r in runs if str(r["id"]) == check.external_id)
                finals = [i for i, body in enumerate(check.history) if "conclusion" in body]
                if check.external_id in taken_over:
                    # the one loss the queue cannot tell: a replica killed after GitHub took
                    # the final report and before its job was marked done. The job is taken
                    # over and sends the same end once more (nothing else after the end).
                    ends = {body.get("conclusion") for body in check.history[finals[0] :]}
                    assert ends == {CONCLUSIONS[state]}, (check.name, check.history)
                else:
                    assert finals == [len(check.history) - 1], (check.name, check.history)
                assert check.history[-1]["conclusion"] == CONCLUSIONS[state]
                assert check.status == "completed"
            # every fault happened
            assert github.faults_left() == 0 and fake_argo.faults_left() == 0
            assert stream.count(503) >= 2  # refused while the database was down
            # no replica stays unready
            for service in replicas.services:
                await wait_for(
                    lambda s=service: asyncio.to_thread(s.is_ready),
                    within=60,
                    what=f"{service.url}/readyz to be 200",
                )
            assert replicas.killed and replicas.killed[0].process is not None
            assert replicas.killed[0].process.returncode == -9
    except BaseException:
        print(replicas.logs())
        raise
    finally:
        await replicas.stop()
