"""The Argo Server's lint, end to end: its verdict fails the check with Argo's message, before
a dry run is called valid and before a workflow is created; its outage is only retried."""

from __future__ import annotations

from ogdc_hooks.pipeline.lint import LINTED
from tests.pipeline.conftest import META, SCRIPT, Stack, push_payload, wait_for

ZERO = "0" * 40
REFUSAL = "templates.main.steps[0].step-0 a rule this fake does not know"


def _recipes(stack: Stack, *names: str, branch: str = "main") -> tuple[str, str]:
    base = stack.git.commit("recipes", {"README.md": "recipes\n"})
    files = {}
    for name in names:
        files |= {f"recipes/{name}/meta.yml": META, f"recipes/{name}/recipe.sh": SCRIPT}
    return base, stack.git.commit("recipes", files, branch=branch, parent=base)


def _lints(stack: Stack) -> int:
    return stack.argo.count("POST", f"/api/v1/workflows/{stack.argo.namespace}/lint")


async def test_a_dry_run_argo_refuses_fails_with_argos_message(stack: Stack) -> None:
    stack.argo.refuse_next_lint(REFUSAL)  # recipes are prepared together: one of them is refused
    _, after = _recipes(stack, "a-refused", "b-accepted", branch="feature")
    await stack.deliver(push_payload(stack.git, before=ZERO, after=after, branch="feature"))

    checks = [
        await stack.check_completed(after, f"ogdc/recipes/{name}")
        for name in ("a-refused", "b-accepted")
    ]
    [refused] = [check for check in checks if check.conclusion == "failure"]
    [accepted] = [check for check in checks if check is not refused]
    assert refused.output["title"] == "Recipe is invalid: 1 problem"
    assert REFUSAL in refused.output["summary"]
    [annotation] = refused.annotations
    assert annotation["path"] == f"recipes/{refused.name.removeprefix('ogdc/recipes/')}/meta.yml"
    assert annotation["message"].endswith(f"the Argo Server's lint refused the rendered "
                                          f"workflow: {REFUSAL}")  # fmt: skip

    assert accepted.conclusion == "neutral"
    assert LINTED in accepted.output["summary"]
    assert _lints(stack) == 2  # one request per recipe
    assert stack.argo.created == []


async def test_before_a_workflow_is_created_an_outage_is_retried_a_refusal_fails(
    stack: Stack,
) -> None:
    stack.argo.fail_next_lints(1, 503)
    before, first = _recipes(stack, "sea-ice")
    await stack.deliver(push_payload(stack.git, before=before, after=first))
    [created] = await wait_for(lambda: stack.argo.created, what="the workflow, lint retried")
    assert _lints(stack) == 2

    async def recorded() -> bool:  # the workflow exists in Argo before the run records it
        [run] = await stack.runs(commit=first)
        return run["state"] in ("submitted", "running")

    await wait_for(recorded, what="the run recorded as submitted")

    stack.argo.refuse_next_lint(REFUSAL)
    second = stack.git.commit("recipes", {"recipes/sea-ice/recipe.sh": SCRIPT + "echo 2\n"})
    await stack.deliver(push_payload(stack.git, before=first, after=second))
    done = await stack.check_completed(second, "ogdc/recipes/sea-ice")
    assert done.conclusion == "failure"
    assert REFUSAL in done.output["summary"]
    [run] = await stack.runs(commit=second)
    assert run["state"] == "invalid"
    assert stack.argo.created == [created]  # nothing more was created
