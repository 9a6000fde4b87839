"""The preview of a dry run (pure): what it says of a workflow, its Mermaid graph, the diff
against the base's render, and the cut that keeps it within a check's limit."""

from __future__ import annotations

import copy
from typing import Any

from ogdc_hooks.forges.github.checks import OUTPUT_BYTES
from ogdc_hooks.pipeline.preview import PREVIEW_BYTES, preview

IMAGE = "ghcr.io/qgreenland-net/ogdc-runner:v1"
FACTS = {
    "sources": ["URL at `data.example.org`", "PVC `archive` at `ice/*.tif`"],
    "files": 1,
    "output": "pvc",
    "dataone_id": None,
    "parallel": True,
    "partition_size": 10,
}


def _workflow(args: str = "echo hi") -> dict[str, Any]:
    container = {"image": IMAGE, "command": ["sh", "-c"], "args": [args]}
    return {
        "metadata": {
            "generateName": "ice-shell-",
            "namespace": "qgnet",
            "annotations": {"ogdc/recipe-id": "ice"},
        },
        "spec": {
            "entrypoint": "main",
            "parallelism": 4,
            "ttlStrategy": {"secondsAfterSuccess": 86400},
            "templates": [
                {"name": "fetch", "container": container},
                {"name": "run", "container": container},
                {"name": "publish", "container": {**container, "image": "rsync:3"}},
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {"name": "publish-data", "template": "publish", "depends": "work"},
                            {"name": "work", "template": "run", "dependencies": ["fetch"]},
                            {"name": "fetch", "template": "fetch"},
                        ]
                    },
                },
            ],
        },
    }


def _preview(workflow: dict[str, Any], base: dict[str, Any] | None = None, **kwargs: Any) -> str:
    return preview(
        workflow,
        FACTS,
        base=base,
        compared=True,
        overwrite=kwargs.pop("overwrite", False),
        run_id="run-1",
        **kwargs,
    )


def test_it_says_what_would_run_in_order_with_images() -> None:
    text = _preview(_workflow())
    assert "| workflow | `ice-shell-…` in namespace `qgnet` |" in text
    assert "| inputs | 2: URL at `data.example.org`; PVC `archive` at `ice/*.tif`" in text
    assert "| partitions | 10 file(s) each, at most 4 at once" in text
    assert "| output | the workflow PVC, under `/ice/` |" in text
    assert "| overwrite | no: the run fails if the output exists |" in text
    assert "| TTL | 1 day(s) after success |" in text
    steps = [line for line in text.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert steps == [
        f"1. `fetch` (template `fetch`): `{IMAGE}`",
        f"2. `work` (template `run`): `{IMAGE}`, after `fetch`",
        "3. `publish-data` (template `publish`): `rsync:3`, after `work`",
    ]
    assert '```mermaid\ngraph TD\n  s0["fetch"]\n  s1["work"]\n  s2["publish-data"]' in text
    assert "  s0 --> s1\n  s1 --> s2\n```" in text
    assert "The recipe is new" in text
    assert "<details><summary>Rendered workflow (YAML)</summary>" in text


def test_a_change_shows_as_a_diff_and_no_change_says_so() -> None:
    text = _preview(_workflow("echo new"), base=_workflow("echo old"))
    diff = text.split("```diff\n")[1].split("\n```")[0].splitlines()
    assert "-      - echo old" in diff
    assert "+      - echo new" in diff
    same = _preview(_workflow(), base=copy.deepcopy(_workflow()))
    assert "The change does not change the rendered workflow." in same
    assert "```diff" not in same


def test_a_preview_too_large_is_cut_with_a_link_to_the_whole_workflow() -> None:
    huge = _workflow("x" * 200 + "\n".join(f"line {n}" for n in range(20_000)))
    base = _workflow("y")
    text = _preview(huge, base=base)
    assert len(text.encode("utf-8")) <= PREVIEW_BYTES < OUTPUT_BYTES
    assert "GET /runs/run-1/workflow" in text
    assert "```diff" in text  # what fits of the diff is kept
    # Without a diff, only the YAML is left out.
    alone = _preview(huge)
    assert len(alone.encode("utf-8")) <= PREVIEW_BYTES
    assert "GET /runs/run-1/workflow" in alone
    assert "Rendered workflow (YAML)" not in alone
