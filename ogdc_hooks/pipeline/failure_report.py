"""How a failed run's details and a succeeded run's output read on the commit; pure.

The failure's class, its explanation and advice, and each failed step's last log lines
in a code block, within GitHub's 65535 bytes of check-run text; log lines of the form
`path:line: message` naming a file inside the recipe's directory become problems (GitHub
shows them as annotations on that file).
"""

from __future__ import annotations

import re
import uuid
from posixpath import normpath

from ogdc_hooks.failure import Failure, StepFailure
from ogdc_hooks.markdown import code_block
from ogdc_hooks.pipeline.outputs import publishes_zip, pvc_output_path
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.recipes.problems import Problem

TEXT_BYTES = 60_000  # of GitHub's 65535 for output.text, leaving room for the headings
MAX_ANNOTATIONS = 50  # one request's worth
# `recipe.sh:3: message`, `./meta.yml:12:5: message`, as compilers and shells print them
_LOCATED = re.compile(r"^\s*(?P<path>[^\s:]+):(?P<line>\d{1,9}):(?:\d{1,9}:)?\s*(?P<what>\S.*)$")


def run_url(public_url: str | None, root_path: str, run_id: uuid.UUID) -> str | None:
    """`GET /runs/{id}` on this service, when its public address is configured."""
    if not public_url:
        return None
    return f"{public_url}{root_path.rstrip('/')}/runs/{run_id}"


def failure_title(failure: Failure) -> str:
    """ "Workflow failed: exit code 2 in step `run-cmd-0`": what token-mode statuses show."""
    where = f" in step `{failure.steps[0].step}`" if failure.steps else ""
    return f"Workflow failed: {failure.classification}{where}"


def failure_text(failure: Failure) -> str:
    """The check run's text: why, what to try, then each step and the end of its log."""
    parts = [
        f"**{failure.classification}**: {failure.explanation}",
        f"What to try: {failure.advice}",
    ]
    budget = TEXT_BYTES // max(1, len(failure.steps))
    parts += [_step_text(step, budget) for step in failure.steps]
    return "\n\n".join(parts) + "\n"


def _step_text(step: StepFailure, budget: int) -> str:
    head = f"### Step `{step.step}`"
    if step.message:
        head += f"\n\nArgo: {step.message}"
    if step.log_error:
        return f"{head}\n\nIts log could not be read: {step.log_error}"
    if step.pod_gone or not step.log_tail:
        return (
            f"{head}\n\nIts log is not available: the step's pod is gone (Argo deletes "
            "finished pods), or it printed nothing."
        )
    shown = _fitting(step.log_tail, budget)
    return (
        f"{head}\n\nThe last {len(shown)} line(s) of its log:\n\n{code_block(chr(10).join(shown))}"
    )


def _fitting(lines: tuple[str, ...], budget: int) -> list[str]:
    """The last lines that fit in `budget` bytes of UTF-8."""
    kept: list[str] = []
    for line in reversed(lines):
        budget -= len(line.encode("utf-8")) + 1
        if budget < 0:
            break
        kept.append(line)
    return kept[::-1]


def failure_problems(failure: Failure, recipe: str) -> tuple[Problem, ...]:
    """Log lines `path:line: message` about a file in the recipe's directory, as problems."""
    found: dict[tuple[str, int, str], Problem] = {}
    for step in failure.steps:
        for line in step.log_tail:
            problem = _located(line, recipe, step.step)
            if problem is not None:
                found.setdefault((problem.path, problem.line, problem.message), problem)
    return tuple(found.values())[:MAX_ANNOTATIONS]


def _located(line: str, recipe: str, step: str) -> Problem | None:
    match = _LOCATED.match(line)
    if match is None or not recipe:
        return None
    path = match["path"]
    inside = f"/{recipe}/"
    if path.startswith("/"):  # an absolute path in the pod: only one through the recipe's dir
        if inside not in path:
            return None
        path = path.split(inside, 1)[1]
    path = normpath(path)
    if path.startswith(("../", "/")) or path in ("..", "."):
        return None
    line_number = int(match["line"])
    if line_number < 1:
        return None
    return Problem(f"{recipe}/{path}", line_number, 1, "", f"step {step}: {match['what']}")


def output_lines(run: RunRecord, pvc: str | None) -> list[str]:
    """Where a succeeded run's output is: the zip's download link, or its volume path."""
    workflow = run.workflow or {}
    if publishes_zip(workflow):
        asked = f"`GET /output/{run.workflow_name}`"
        if not run.output_url:
            return [f"Output: a zip; {asked} gives where to download it."]
        return [
            f"Output: download the zip from <{run.output_url}> (with an Argo token; "
            f"{asked} gives the same link)."
        ]
    path = pvc_output_path(workflow)
    if path is not None:
        volume = f" `{pvc}`" if pvc else ""
        return [f"Output: copied to `{path}` on the workflow volume{volume}."]
    return []
