"""Many repositories pushing at once: time until every push is reported, and how evenly.

    python bench/repos_bench.py [--repositories 200] [--installations 10] [--busy 50]

One service (4 worker slots, the default) on a fresh database, a real git
server holding every repository, the fake Argo Server (each workflow succeeds
a second after it is created) and the fake GitHub with one App whose
installations share the repositories. Each scenario pushes, all at once, a
commit changing one recipe, and times each repository from the first delivery
to the moment its last push's check run is completed on GitHub. Scenarios:

- `many`: every repository pushes once, `OGDC_JOBS_PER_REPOSITORY=2`;
- `many, no limit`: the same with the limit out of the way (the baseline);
- `one repository`: one repository pushes as many times (the same work, serialised
  by the limit);
- `busy + many` with and without the limit: one repository pushes `--busy`
  times first, then every other repository once: do the others wait for it?

It prints, per scenario, the time until all were reported and the spread
between repositories (p50, p90 and max of the per-repository times; for `busy
+ many`, of the other repositories). It asserts nothing. All traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from intake_bench import SECRET, push_payload, signed_headers  # noqa: E402
from soak import finish_workflows  # noqa: E402

from tests.fakes.argo import FakeArgo  # noqa: E402
from tests.fakes.github import FakeGitHub, generate_app_key  # noqa: E402
from tests.pipeline.conftest import APP_ID, github_app_env  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402
from tests.support.postgres import PostgresServer, start_postgres  # noqa: E402
from tests.support.service import DEFAULT_SECRETS, Service  # noqa: E402

UNLIMITED = 1_000_000
META = (
    'name: "Sea Ice Bench"\nworkflow:\n  type: shell\ninput:\n  params:\n'
    '    - value: "https://data.example.org/N_202309_concentration.tif"\n'
    "output:\n  type: temporary\n"
)


@dataclass(frozen=True)
class Scenario:
    name: str
    pushes: list[int]  # pushes per repository, in the order they are sent
    per_repository: int


@dataclass
class Outcome:
    total_s: float
    per_repository_s: list[float]  # index: repository
    check_requests: int


def _repository(index: int) -> str:
    return f"ogdc-group-{index:03d}/recipes"


async def _login(session: aiohttp.ClientSession, service: Service) -> None:
    password = DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"]
    form = {"username": "admin", "password": password}
    async with session.post(service.url + "/token", data=form) as answer:
        token = (await answer.json())["access_token"]
    user = {"username": "author", "password": "a-long-password", "github_login": "recipe-author"}
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(service.url + "/create_user", data=user, headers=headers) as answer:
        assert answer.status in (200, 201), await answer.text()


def _prepare_pushes(
    git: GitServer, scenario: Scenario, installations: int
) -> list[tuple[int, bytes]]:
    """Commit every push in the repositories; the signed deliveries in sending order."""
    deliveries: list[tuple[int, bytes]] = []
    for index, count in enumerate(scenario.pushes):
        name = f"bench-{uuid.uuid4().hex[:8]}-{index}"
        git.create_repo(name)
        base = git.commit(name, {"README.md": "recipes\n"})
        for push in range(count):
            after = git.commit(
                name,
                {
                    "recipes/sea-ice/meta.yml": META,
                    "recipes/sea-ice/recipe.sh": f"gdalinfo /input_dir/*.tif > /out/{push}.txt\n",
                },
            )
            payload: dict[str, Any] = push_payload(git.clone_url(name), base, after)
            full_name = _repository(index)
            payload["repository"] |= {"full_name": full_name, "name": "recipes"}
            payload["installation"] = {"id": 1 + index % installations}
            deliveries.append((index, json.dumps(payload).encode()))
            base = after
    return deliveries


async def run_scenario(pg: PostgresServer, scenario: Scenario, args: argparse.Namespace) -> Outcome:
    database = await asyncio.to_thread(pg.create_database)
    key = generate_app_key()
    github = FakeGitHub()
    github.add_app(APP_ID, key.public_key)
    for installation in range(1, args.installations + 1):
        repositories = [
            _repository(index)
            for index in range(len(scenario.pushes))
            if 1 + index % args.installations == installation
        ]
        github.add_installation(
            installation, app_id=APP_ID, account=f"group-{installation}", repositories=repositories
        )
    await github.start()
    argo = FakeArgo().start()
    stop = threading.Event()
    finisher = threading.Thread(target=finish_workflows, args=(argo, stop), daemon=True)
    finisher.start()
    with tempfile.TemporaryDirectory(prefix="bench-repos-") as root:
        git = GitServer(Path(root)).start()
        service = Service(
            {
                **pg.env(database),
                **github_app_env(github, argo, key, SECRET),
                "OGDC_ARGO_POLL_SECONDS": "1",
                "OGDC_RECONCILE_SECONDS": "0",
                "OGDC_JOBS_PER_REPOSITORY": str(scenario.per_repository),
            }
        )
        try:
            await asyncio.to_thread(service.start)
            deliveries = await asyncio.to_thread(_prepare_pushes, git, scenario, args.installations)
            async with aiohttp.ClientSession() as session:
                await _login(session, service)
                return await _push_and_wait(
                    session, service, github, scenario, deliveries, limit=args.limit
                )
        finally:
            await asyncio.to_thread(service.stop)
            git.stop()
            stop.set()
            await asyncio.to_thread(finisher.join)
            argo.stop()
            await github.stop()
            await asyncio.to_thread(pg.drop_database, database)


async def _push_and_wait(
    session: aiohttp.ClientSession,
    service: Service,
    github: FakeGitHub,
    scenario: Scenario,
    deliveries: list[tuple[int, bytes]],
    *,
    limit: float,
) -> Outcome:
    async def deliver(body: bytes) -> None:
        headers = signed_headers(body) | {"X-GitHub-Delivery": str(uuid.uuid4())}
        async with session.post(
            service.url + "/webhooks/github", data=body, headers=headers
        ) as answer:
            assert answer.status == 202, await answer.text()

    started = time.monotonic()
    await asyncio.gather(*(deliver(body) for _, body in deliveries))
    expected = scenario.pushes
    reported: dict[int, float] = {}
    while len(reported) < len(expected):
        if time.monotonic() - started > limit:
            raise SystemExit(f"{scenario.name}: not all reported within {limit} s")
        done: dict[str, int] = {}
        for run in list(github.check_runs.values()):
            if run.status == "completed":
                done[run.repository.lower()] = done.get(run.repository.lower(), 0) + 1
        now = time.monotonic() - started
        for index, count in enumerate(expected):
            if index not in reported and done.get(_repository(index), 0) >= count:
                reported[index] = now
        await asyncio.sleep(0.1)
    checks = len(github.requests_to("POST", r"/check-runs$"))
    times = [reported[index] for index in range(len(expected))]
    return Outcome(max(times), times, checks)


def _spread(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"min {ordered[0]:6.1f}  p50 {statistics.median(ordered):6.1f}  p90 {p90:6.1f}  "
        f"max {ordered[-1]:6.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repositories", type=int, default=200)
    parser.add_argument("--installations", type=int, default=10)
    parser.add_argument("--busy", type=int, default=50, help="pushes of the busy repository")
    parser.add_argument("--limit", type=float, default=900.0, help="seconds per scenario at most")
    parser.add_argument("--only", action="append", help="run only these scenarios (by name)")
    args = parser.parse_args()
    many = [1] * args.repositories
    scenarios = [
        Scenario("many", many, 2),
        Scenario("many, no limit", many, UNLIMITED),
        Scenario("one repository", [args.repositories], 2),
        Scenario("busy + many", [args.busy, *many[1:]], 2),
        Scenario("busy + many, no limit", [args.busy, *many[1:]], UNLIMITED),
    ]
    # git's CGI processes, started from the git server's thread, are reaped there too
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    pg = start_postgres()
    print(
        f"{args.repositories} repositories in {args.installations} installations, one push each "
        f"(busy: {args.busy}); seconds from the first delivery to each repository's last check "
        "completed\n"
    )
    print(f"{'scenario':<24} {'pushes':>6} {'all reported':>12}   spread between repositories")
    try:
        for scenario in scenarios:
            if args.only and scenario.name not in args.only:
                continue
            outcome = asyncio.run(run_scenario(pg, scenario, args))
            times = outcome.per_repository_s
            busy = scenario.name.startswith("busy")
            others = times[1:] if busy else times
            note = f"  (the {len(others)} others; busy {times[0]:.1f})" if busy else ""
            print(
                f"{scenario.name:<24} {sum(scenario.pushes):>6} {outcome.total_s:>11.1f}s   "
                f"{_spread(others)}{note}",
                flush=True,
            )
    finally:
        if pg.keeper is not None:
            pg.keeper.cleanup()


if __name__ == "__main__":
    main()
