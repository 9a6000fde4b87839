"""What a dry run would make Argo do, as Markdown for the check run's summary; pure.

For each recipe: the workflow's name, its entry steps in order with each step's image, the
inputs and where they come from, partitions and parallelism, where outputs go, the overwrite
behaviour and the TTL; a Mermaid graph of the steps (GitHub renders Mermaid in check output);
the unified diff between the base's render and this one when the recipe exists on the base;
and the rendered YAML in a collapsed block. It fits in `PREVIEW_BYTES`, below GitHub's 65535
bytes a check summary may hold, cutting the YAML and then the diff with a note saying where
the whole workflow is (`GET /runs/{id}/workflow`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import yaml

from ogdc_hooks.markdown import fence
from ogdc_hooks.recipes.model import DataOneInput, InputFile, PvcMountInput, Recipe

PREVIEW_BYTES = 60_000  # leaves room in GitHub's 65535 for the lines around the preview
_DEPENDS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def recipe_facts(recipe: Recipe, inputs: Sequence[InputFile]) -> dict[str, Any]:
    """What the preview says that the rendered workflow does not say plainly (kept on the run)."""
    sources = []
    for param in recipe.meta.input.params:
        if isinstance(param, DataOneInput):
            sources.append(f"DataONE package `{param.dataset_identifier}`")
        elif isinstance(param, PvcMountInput):
            sources.append(f"PVC `{param.claim_name}` at `{param.path}/{param.glob}`")
        else:
            sources.append(f"URL at `{urlsplit(param.value).hostname or param.value}`")
    output = recipe.meta.output
    parallel = recipe.meta.workflow.parallel
    return {
        "sources": sources,
        "files": len(inputs),
        "output": output.type,
        "dataone_id": output.dataone_id,
        "parallel": parallel.enabled,
        "partition_size": parallel.partition_size,
    }


def _templates(workflow: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    templates = (workflow.get("spec") or {}).get("templates") or []
    return {t["name"]: t for t in templates if isinstance(t, Mapping) and "name" in t}


def _ordered(entry: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """The entry template's steps as (name, template, names it waits for), in running order."""
    if entry.get("steps"):
        found: list[tuple[str, str, list[str]]] = []
        previous: list[str] = []
        for group in entry["steps"]:
            found += [(step["name"], step.get("template", ""), previous) for step in group]
            previous = [step["name"] for step in group]
        return found
    tasks = (entry.get("dag") or {}).get("tasks") or []
    known = {task["name"] for task in tasks}
    waits = {
        task["name"]: list(task.get("dependencies") or [])
        or [n for n in _DEPENDS_NAME.findall(task.get("depends") or "") if n in known]
        for task in tasks
    }
    order: list[tuple[str, str, list[str]]] = []
    done: set[str] = set()
    while len(done) < len(tasks):
        ready = [t for t in tasks if t["name"] not in done and set(waits[t["name"]]) <= done]
        if not ready:  # a cycle: Argo refuses it; list the rest as written
            ready = [t for t in tasks if t["name"] not in done]
        for task in ready:
            order.append((task["name"], task.get("template", ""), waits[task["name"]]))
            done.add(task["name"])
    return order


def _image(template: Mapping[str, Any] | None) -> str:
    if template is None:
        return "?"
    for kind in ("container", "script"):
        if isinstance(template.get(kind), Mapping):
            return f"`{template[kind].get('image', '?')}`"
    return "(steps of its own)" if template.get("steps") or template.get("dag") else "(no image)"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | str) or not str(seconds).isdigit():
        return str(seconds)
    value = int(seconds)
    if value % 86400 == 0:
        return f"{value // 86400} day(s)"
    if value % 3600 == 0:
        return f"{value // 3600} hour(s)"
    return f"{value} s"


def _ttl(spec: Mapping[str, Any]) -> str:
    ttl = spec.get("ttlStrategy") or {}
    parts = [
        f"{_duration(ttl[key])} after {when}"
        for key, when in (
            ("secondsAfterCompletion", "it ends"),
            ("secondsAfterSuccess", "success"),
            ("secondsAfterFailure", "failure"),
        )
        if key in ttl
    ]
    return ", ".join(parts) or "kept until deleted"


def _output(facts: Mapping[str, Any], recipe_id: str) -> str:
    kind = facts.get("output")
    if kind == "temporary":
        return f"a zip, `{recipe_id}.zip`, kept as an Argo artifact (`GET /output/...`)"
    if kind == "dataone":
        return f"DataONE (`{facts.get('dataone_id') or 'no id'}`)"
    return f"the workflow PVC, under `/{recipe_id}/`"


def _mermaid(steps: list[tuple[str, str, list[str]]]) -> str:
    ids = {name: f"s{n}" for n, (name, _, _) in enumerate(steps)}
    lines = ["graph TD"]
    for name, _, _ in steps:
        label = name.replace('"', "#quot;")
        lines.append(f'  {ids[name]}["{label}"]')
    for name, _, waits in steps:
        lines += [f"  {ids[w]} --> {ids[name]}" for w in waits if w in ids]
    return "```mermaid\n" + "\n".join(lines) + "\n```"


def workflow_yaml(workflow: Mapping[str, Any]) -> str:
    """One line per value (no folding), so a diff shows whole changed lines."""
    return yaml.safe_dump(dict(workflow), sort_keys=False, allow_unicode=True, width=1 << 20)


def _block(summary: str, language: str, text: str) -> str:
    marks = fence(text)
    body = f"{marks}{language}\n{text}\n{marks}"
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _facts_table(
    workflow: Mapping[str, Any], facts: Mapping[str, Any], overwrite: bool
) -> Iterator[str]:
    metadata = workflow.get("metadata") or {}
    spec = workflow.get("spec") or {}
    recipe_id = (metadata.get("annotations") or {}).get("ogdc/recipe-id", "?")
    name = metadata.get("name") or f"{metadata.get('generateName', '?')}…"
    sources = list(facts.get("sources") or [])
    yield "| | |\n|---|---|"
    yield f"| workflow | `{name}` in namespace `{metadata.get('namespace', '?')}` |"
    files = facts.get("files", 0)
    yield f"| inputs | {len(sources)}: {'; '.join(sources) or 'none'} ({files} file(s) listed) |"
    if facts.get("parallel"):
        size = facts.get("partition_size") or "the default number of"
        most = spec.get("parallelism", "?")
        yield f"| partitions | {size} file(s) each, at most {most} at once (`spec.parallelism`) |"
    yield f"| output | {_output(facts, recipe_id)} |"
    yield (
        "| overwrite | yes: an existing output is removed first |"
        if overwrite
        else "| overwrite | no: the run fails if the output exists |"
    )
    yield f"| TTL | {_ttl(spec)} |"


def _steps_list(workflow: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    templates = _templates(workflow)
    entry_name = (workflow.get("spec") or {}).get("entrypoint", "")
    steps = _ordered(templates.get(entry_name) or {})
    lines = [f"Entry `{entry_name}`, its steps in order:", ""]
    lines += [
        f"{n}. `{name}` (template `{template}`): {_image(templates.get(template))}"
        + (f", after {', '.join(f'`{w}`' for w in waits)}" if waits else "")
        for n, (name, template, waits) in enumerate(steps, 1)
    ]
    return lines, steps


def _diff(base: Mapping[str, Any], head: Mapping[str, Any]) -> str:
    lines = difflib.unified_diff(
        workflow_yaml(base).splitlines(),
        workflow_yaml(head).splitlines(),
        "base branch (merge base)",
        "this commit",
        lineterm="",
    )
    return "\n".join(lines)


def _fit(text: str, room: int) -> str | None:
    """`text` when it fits in `room` bytes, else None."""
    return text if len(text.encode("utf-8")) <= room else None


def preview(
    workflow: Mapping[str, Any],
    facts: Mapping[str, Any] | None,
    *,
    base: Mapping[str, Any] | None,
    compared: bool,
    overwrite: bool,
    run_id: str,
    limit: int = PREVIEW_BYTES,
) -> str:
    """The Markdown preview; `compared`: the run has a base to compare with (`base` None:
    the recipe is new there, or did not render there)."""
    steps_lines, steps = _steps_list(workflow)
    parts = [
        "### What Argo would run",
        "",
        *_facts_table(workflow, facts or {}, overwrite),
        "",
        *steps_lines,
        "",
        _mermaid(steps),
    ]
    where = f"`GET /runs/{run_id}/workflow` (or `ogdc-hooks runs workflow {run_id}`)"
    head = "\n".join(parts)
    tail: list[str] = []
    if compared and base is None:
        tail.append("The recipe is new: the base branch has no render of it to compare with.")
    diff = _diff(base, workflow) if base is not None else ""
    if base is not None and not diff:
        tail.append("The change does not change the rendered workflow.")
    rendered = workflow_yaml(workflow)
    room = limit - len(head.encode("utf-8")) - 600  # the notes below
    blocks: list[str] = []
    diff_block = _block("Changes to the base branch's workflow", "diff", diff) if diff else ""
    yaml_block = _block("Rendered workflow (YAML)", "yaml", rendered)
    if _fit(diff_block + yaml_block, room):
        blocks = [b for b in (diff_block, yaml_block) if b]
    elif diff_block and _fit(diff_block, room):
        blocks = [diff_block, f"The rendered workflow is too large for a check; see {where}."]
    else:
        cut = _cut_lines(diff, room - 400) if diff else ""
        if cut:
            blocks.append(_block("Changes to the workflow (cut)", "diff", cut))
        blocks.append(f"The preview was cut to fit in a check; the whole workflow: {where}.")
    return "\n\n".join([head, *tail, *blocks])


def _cut_lines(text: str, room: int) -> str:
    """The first lines of `text` that fit in `room` bytes."""
    kept: list[str] = []
    used = 0
    for line in text.splitlines():
        used += len(line.encode("utf-8")) + 1
        if used > room:
            break
        kept.append(line)
    return "\n".join(kept)
