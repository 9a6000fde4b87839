"""Memory of ogdc-hooks under each hostile input of issue 18, beside its idle memory.

For each case a fresh service (real PostgreSQL, workers on, no Argo Server: dry
runs) is started; its resident memory (VmRSS) is read once it is ready, then
the attack runs to its refusal, then the peak (VmHWM) is read from
/proc/<pid>/status. Meanwhile `/healthz` is probed every 50 ms with a 100 ms
timeout from a process of its own (`tests.support.prober`). Hostile git servers
are `tests.support.hostile_git`; the git bomb is a real repository. The
deployment's default limits apply, except the read timeout (5 s, so that the
slow-client case ends soon). It prints one table and asserts nothing.

    python bench/hostile_bench.py [--case NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from tests.support.gitserver import GitServer  # noqa: E402
from tests.support.hostile_git import hostile_git  # noqa: E402
from tests.support.postgres import PostgresServer, start_postgres  # noqa: E402
from tests.support.service import DEFAULT_SECRETS, Service  # noqa: E402
from tests.support.slow_clients import closed_by_peer, slow_clients  # noqa: E402
from tests.webhooks.signing import signed_delivery  # noqa: E402

SECRET = "bench-webhook-secret"
LOGIN = "bench-author"
MIB = 1024 * 1024
META = "name: Sea ice\nworkflow:\n  type: shell\ninput:\n  params:\n    - value: https://example.org/a.tif\n"
# What issue 18 measured before the bounds, for the table's last column.
REPORTED = {
    "baseline: one valid push": "",
    "git bomb (10^10 paths), push": "3-6 GiB",
    "endless remote: noise + bad pack": "+2.4-3.5 GiB",
    "endless refs, /submit": "+1.85 GiB (git)",
    "16 unsigned 25 MiB bodies": "+1.0-1.3 GiB (40)",
    "meta.yml of 100k unknown keys": "~1.8 GiB a GET /runs",
    "recipe.sh of 200k commands": "+2.7 GiB",
    "redirect to another host": "token leaked",
    "300 slow clients": "held forever",
}


@dataclass
class Env:
    pg: PostgresServer
    git: GitServer


@dataclass
class Case:
    name: str
    attack: Callable[[Service, Env, aiohttp.ClientSession], Awaitable[str]]


def push(clone_url: str, after: str) -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": after,
        "deleted": False,
        "repository": {
            "full_name": "bench/recipes",
            "clone_url": clone_url,
            "default_branch": "main",
        },
        "sender": {"login": LOGIN},
    }


async def deliver(
    service: Service, session: aiohttp.ClientSession, payload: dict[str, Any]
) -> None:
    headers, body = signed_delivery(payload, SECRET)
    async with session.post(service.url + "/webhooks/github", data=body, headers=headers) as answer:
        assert answer.status == 202, await answer.text()


async def token(service: Service, session: aiohttp.ClientSession) -> str:
    form = {"username": "admin", "password": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"]}
    async with session.post(service.url + "/token", data=form) as answer:
        return str((await answer.json())["access_token"])


async def run_outcome(service: Service, session: aiohttp.ClientSession, sha: str) -> str:
    """The finished run's state and the start of its message, once there is one."""
    headers = {"Authorization": f"Bearer {await token(service, session)}"}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        async with session.get(
            service.url + "/runs", params={"commit": sha}, headers=headers
        ) as answer:
            runs = (await answer.json())["runs"]
        if runs and runs[0]["state"] not in ("queued",):
            return f"{runs[0]['state']}: ...{(runs[0]['message'] or '')[-70:]}"
        await asyncio.sleep(0.2)
    return "no outcome within 300 s"


async def git_bomb(service: Service, env: Env, session: aiohttp.ClientSession) -> str:
    env.git.create_repo("bomb")
    sha = env.git.bomb("bomb")
    await deliver(service, session, push(env.git.clone_url("bomb"), sha))
    return await run_outcome(service, session, sha)


async def noise(service: Service, env: Env, session: aiohttp.ClientSession) -> str:
    sha = env.git.commit("recipes", {"recipes/x/meta.yml": META, "recipes/x/recipe.sh": "ls\n"})
    with hostile_git("noise", upstream=env.git.url) as hostile:
        hostile.noise_bytes = 512 * MIB
        await deliver(service, session, push(hostile.clone_url("recipes"), sha))
        return await run_outcome(service, session, sha)


async def endless_refs(service: Service, env: Env, session: aiohttp.ClientSession) -> str:
    headers = {"Authorization": f"Bearer {await token(service, session)}"}
    with hostile_git("refs") as hostile:
        form = {"recipe_path": hostile.clone_url("recipes"), "ref": "main", "path": "recipes/x"}
        async with session.post(service.url + "/submit", json=form, headers=headers) as answer:
            return f"{answer.status}: {(await answer.json())['detail'][-60:]}"


async def unsigned(service: Service, env: Env, session: aiohttp.ClientSession) -> str:
    body = b"{" + b" " * (25 * MIB - 2) + b"}"
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "flood",
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
        "Content-Type": "application/json",
    }

    async def send() -> str:
        try:
            async with session.post(
                service.url + "/webhooks/github", data=body, headers=headers
            ) as answer:
                return str(answer.status)
        except aiohttp.ClientError:
            return "reset"

    answers = await asyncio.gather(*(send() for _ in range(16)))
    return " ".join(f"{answers.count(a)}x{a}" for a in sorted(set(answers)))


async def pushed_recipe(
    service: Service, env: Env, session: aiohttp.ClientSession, files: dict[str, str]
) -> str:
    sha = env.git.commit("recipes", files)
    await deliver(service, session, push(env.git.clone_url("recipes"), sha))
    return await run_outcome(service, session, sha)


async def unknown_keys(service: Service, env: Env, session: aiohttp.ClientSession) -> str:
    meta = META + "".join(f"k{n}: 1\n" for n in range(100_000))
    files = {"recipes/x/meta.yml": meta, "recipes/x/recipe.sh": "ls\n"}
    outcome = await pushed_recipe(service, env, session, files)
    headers = {"Authorization": f"Bearer {await token(service, session)}"}
    async with session.get(service.url + "/runs", headers=headers) as answer:
        size = len(await answer.read())
    return f"{outcome[:40]}; GET /runs {size // 1024} KiB"


async def commands(service: Service, env: Env, session: aiohttp.ClientSession) -> str:
    files = {"recipes/x/meta.yml": META, "recipes/x/recipe.sh": "x\n" * 200_000}
    return await pushed_recipe(service, env, session, files)


async def redirect(service: Service, env: Env, session: aiohttp.ClientSession) -> str:
    with hostile_git("redirect", target=env.git.url) as hostile:
        await deliver(service, session, push(hostile.clone_url("recipes"), "a" * 40))
        outcome = await run_outcome(service, session, "a" * 40)
    return f"{outcome[:40]}; {len(env.git.requests)} requests reached the target"


async def slowloris(service: Service, env: Env, session: aiohttp.ClientSession) -> str:
    started = time.monotonic()
    connections = slow_clients(service.base_url, 300)
    while time.monotonic() - started < 120:
        if all(closed_by_peer(c) for c in connections):
            break
        await asyncio.sleep(0.2)
    open_ones = sum(not closed_by_peer(c) for c in connections)
    for connection in connections:
        connection.close()
    return f"{300 - open_ones} of 300 closed after {time.monotonic() - started:.0f} s"


async def legitimate(service: Service, env: Env, session: aiohttp.ClientSession) -> str:
    files = {"recipes/x/meta.yml": META, "recipes/x/recipe.sh": "gdalinfo /input_dir/a.tif\n"}
    return await pushed_recipe(service, env, session, files)


CASES = [
    Case("baseline: one valid push", legitimate),
    Case("git bomb (10^10 paths), push", git_bomb),
    Case("endless remote: noise + bad pack", noise),
    Case("endless refs, /submit", endless_refs),
    Case("16 unsigned 25 MiB bodies", unsigned),
    Case("meta.yml of 100k unknown keys", unknown_keys),
    Case("recipe.sh of 200k commands", commands),
    Case("redirect to another host", redirect),
    Case("300 slow clients", slowloris),
]


async def probing(service: Service) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.prober",
        service.url + "/healthz",
        cwd=HERE.parent,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def measure(case: Case, pg: PostgresServer) -> list[str]:
    database = await asyncio.to_thread(pg.create_database)
    git = GitServer(Path(tempfile.mkdtemp(prefix="bench-git-"))).start()
    git.create_repo("recipes")
    service = Service(
        {
            **pg.env(database),
            **DEFAULT_SECRETS,
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "OGDC_HTTP_READ_TIMEOUT_SECONDS": "5",
        }
    )
    try:
        await asyncio.to_thread(service.start)
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {await token(service, session)}"}
            user = {"username": "author", "password": "a-long-password", "github_login": LOGIN}
            async with session.post(
                service.url + "/create_user", data=user, headers=headers
            ) as answer:
                assert answer.status == 201
            idle = service.memory()["VmRSS"]
            prober = await probing(service)
            started = time.monotonic()
            outcome = await case.attack(service, Env(pg, git), session)
            seconds = time.monotonic() - started
            out, _ = await prober.communicate(b"")
        report = json.loads(out)
        peak = service.memory()["VmHWM"]
        probes = f"{report['probes'] - len(report['failures'])}/{report['probes']}"
        return [
            case.name,
            f"{idle / MIB:.0f}",
            f"{peak / MIB:.0f}",
            f"{(peak - idle) / MIB:+.0f}",
            f"{seconds:.1f}",
            probes,
            outcome,
            REPORTED[case.name],
        ]
    finally:
        await asyncio.to_thread(service.stop)
        git.stop()
        await asyncio.to_thread(pg.drop_database, database)


def table(rows: list[list[str]]) -> str:
    header = [
        "case",
        "idle MiB",
        "peak MiB",
        "delta",
        "seconds",
        "healthz ok",
        "refusal",
        "issue 18",
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    rule = "  ".join("-" * w for w in widths)
    head = "  ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True))
    return "\n".join([head, rule, *lines])


async def main_async(names: list[str]) -> None:
    pg = await asyncio.to_thread(start_postgres)
    rows = []
    try:
        for case in CASES:
            if not names or any(name in case.name for name in names):
                rows.append(await measure(case, pg))
                print(f"measured: {case.name}", file=sys.stderr, flush=True)
    finally:
        if pg.keeper is not None:
            pg.keeper.cleanup()
    print(table(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--case", action="append", default=[], help="only cases whose name contains this"
    )
    asyncio.run(main_async(parser.parse_args().case))


if __name__ == "__main__":
    main()
