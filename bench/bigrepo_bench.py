"""A one-recipe push to a big repository: bytes, disk and time of our fetch beside a full
shallow clone of the same commit.

The repository (built once with `git fast-import`, kept in `bench/.cache/bigrepo/`) has
10,000 recipes added over 10,000 commits and about 1.1 GiB of incompressible data files in
`data/` beside them; one more commit changes one recipe. It is served over smart HTTP by
`git http-backend` (the tests' git server, which allows partial clone as GitHub does).
Measured for each side: bytes the server sent and received, the disk the result uses, and
the wall time. Ours is `checkout.checkout` restricted to what `pipeline.push` asks for:
the two commits' trees, the diff on trees, and the changed recipe's files. The baseline
is `git clone --depth 1` of the head commit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ogdc_hooks.checkout import fetch_trees
from ogdc_hooks.pipeline.push import changed_recipes
from tests.support.gitserver import GitServer

CACHE = Path(__file__).resolve().parent / ".cache" / "bigrepo"
RECIPES = 10_000
DATA_EVERY = 9  # a 1 MiB data file with every ninth commit: 1,112 MiB in all
DATA_BYTES = 1024 * 1024
CHANGED = 4242
_META = (
    'name: "Recipe {n}"\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: url\n'
    '      value: "https://data.example.org/{n}.tif"\noutput:\n  type: temporary\n'
)


def _stream(out: object) -> None:
    """The fast-import stream: commit i adds recipe i (and a data file every ninth)."""
    write = out.write  # type: ignore[attr-defined]
    clock = 1_700_000_000

    def blob(data: bytes) -> bytes:
        return b"data %d\n%s\n" % (len(data), data)

    for i in range(RECIPES + 1):
        clock += 60
        head = i == RECIPES
        message = b"change one recipe" if head else b"add recipe %05d" % i
        write(b"commit refs/heads/main\n")
        write(b"committer Bench <bench@example.org> %d +0000\n" % clock)
        write(blob(message))
        if head:
            path = b"recipes/r%05d/recipe.sh" % CHANGED
            write(b"M 100644 inline " + path + b"\n" + blob(b"echo changed > /output_dir/x\n"))
            continue
        meta = _META.format(n=i).encode()
        write(b"M 100644 inline recipes/r%05d/meta.yml\n" % i + blob(meta))
        script = b"echo %d > /output_dir/x\n" % i
        write(b"M 100644 inline recipes/r%05d/recipe.sh\n" % i + blob(script))
        if i % DATA_EVERY == 0:
            write(b"M 100644 inline data/d%05d.bin\n" % i + blob(os.urandom(DATA_BYTES)))
    write(b"done\n")


def build() -> dict[str, str]:
    """The repository and its base/head commits; built only when the cache lacks them."""
    info = CACHE / "commits.json"
    if info.exists():
        return dict(json.loads(info.read_text()))
    shutil.rmtree(CACHE, ignore_errors=True)
    repo = CACHE / "big.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--template=", str(repo)], check=True)
    started = time.monotonic()
    importer = subprocess.Popen(
        [
            "git",
            "-c",
            "core.compression=0",
            "fast-import",
            "--quiet",
            "--done",
            "--big-file-threshold=512k",
        ],
        cwd=repo,
        stdin=subprocess.PIPE,
    )
    assert importer.stdin is not None
    _stream(importer.stdin)
    importer.stdin.close()
    if importer.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], cwd=repo, check=True)
    head = _git(repo, "rev-parse", "main")
    commits = {"base": _git(repo, "rev-parse", "main~1"), "head": head}
    print(f"built {repo} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    info.write_text(json.dumps(commits))
    return commits


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


class CountingServer(GitServer):
    """The tests' git server, counting the bytes of every answer and request body."""

    sent = 0
    received = 0

    async def _backend(self, request: web.Request) -> web.StreamResponse:
        response = await super()._backend(request)
        self.sent += response.body_length
        self.received += request.content_length or 0
        return response

    def moved(self) -> int:
        assert self._server is not None
        return int(self._server.call(lambda: self.sent + self.received))


def _disk(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def ours(url: str, commits: dict[str, str], scratch: Path) -> tuple[int, list[str]]:
    """A one-recipe push as `pipeline.push` handles it: trees, diff, changed recipes."""
    with fetch_trees(
        url,
        commits["head"],
        scratch,
        timeout_s=600,
        max_bytes=8 << 30,
        extra_shas=[commits["base"]],
    ) as trees:
        recipes = changed_recipes(trees, commits["base"])
        trees.check_out(recipes)
        assert (trees.work / recipes[0] / "recipe.sh").is_file()
        return _disk(trees.work), recipes


def baseline(url: str, commits: dict[str, str], scratch: Path) -> tuple[int, list[str]]:
    work = scratch / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", "--no-tags", "--branch", "main", url, work],
        check=True,
    )
    assert _git(work, "rev-parse", "HEAD") == commits["head"]
    try:
        return _disk(work), []
    finally:
        shutil.rmtree(work)


def measure(
    server: CountingServer,
    run: Callable[[str, dict[str, str], Path], tuple[int, list[str]]],
    commits: dict[str, str],
    rounds: int,
) -> dict[str, float]:
    """Median bytes moved, disk used and seconds of `rounds` runs."""
    results = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            moved = server.moved()
            started = time.monotonic()
            disk, _recipes = run(server.clone_url("big"), commits, Path(scratch))
            seconds = time.monotonic() - started
            results.append((seconds, server.moved() - moved, disk))
    seconds, moved, disk = (statistics.median(column) for column in zip(*results, strict=True))
    return {"bytes": moved, "disk": disk, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="runs of ours (median)")
    args = parser.parse_args()
    commits = build()
    if args.build_only:
        return
    repo = CACHE / "big.git"
    packed = sum(p.stat().st_size for p in (repo / "objects" / "pack").glob("*.pack"))
    count = _git(repo, "rev-list", "--count", "main")
    print(f"repository: {RECIPES} recipes, {count} commits, {packed / 2**30:.2f} GiB packed")
    server = CountingServer(CACHE).start()
    try:
        mine = measure(server, ours, commits, args.rounds)
        base = measure(server, baseline, commits, 1)
    finally:
        server.stop()
    print(f"{'':28} {'bytes moved':>14} {'disk used':>14} {'seconds':>9}")
    for label, row in (("ogdc-hooks (one recipe)", mine), ("git clone --depth 1", base)):
        print(f"{label:28} {row['bytes']:>14,.0f} {row['disk']:>14,.0f} {row['seconds']:>9.2f}")
    print(
        f"ratio (baseline / ours): bytes {base['bytes'] / mine['bytes']:.0f}x, "
        f"disk {base['disk'] / mine['disk']:.0f}x, time {base['seconds'] / mine['seconds']:.1f}x"
    )
    print(
        f"target: >= 20x fewer bytes ({'met' if base['bytes'] >= 20 * mine['bytes'] else 'MISSED'})"
        f", under 3 s ({'met' if mine['seconds'] < 3 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
