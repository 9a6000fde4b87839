"""`ArgoClient.lint` against the fake Argo Server: a verdict is a lint error, an outage is not."""

from __future__ import annotations

import pytest

from ogdc_hooks.argo.client import ArgoClient, ArgoLintError, ArgoTransientError
from ogdc_hooks.argo.engine import ArgoEngine
from tests.argo.conftest import workflow
from tests.fakes.argo import FakeArgo


async def test_a_valid_workflow_passes_and_is_sent_as_argo_expects(
    argo: ArgoClient, fake_argo: FakeArgo
) -> None:
    await argo.lint(workflow())

    [sent] = fake_argo.requests
    assert (sent.method, sent.path) == ("POST", f"/api/v1/workflows/{fake_argo.namespace}/lint")
    assert sent.body == {"namespace": fake_argo.namespace, "workflow": workflow()}
    assert sent.token_ok
    assert fake_argo.created == []  # linting creates nothing


async def test_argos_500_verdict_is_a_lint_error_with_argos_message(argo: ArgoClient) -> None:
    bad = workflow()
    bad["spec"]["templates"][0]["container"]["args"] = ["echo {{inputs.parameters.nope}}"]

    with pytest.raises(ArgoLintError) as caught:
        await argo.lint(bad)

    assert caught.value.status == 500
    # the entrypoint is validated first, and its error is returned as it is (validate.go)
    assert str(caught.value) == "templates.main: failed to resolve {{inputs.parameters.nope}}"
    assert await ArgoEngine(argo).lint(bad) == str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_an_outage_is_transient_not_a_verdict(
    argo: ArgoClient, fake_argo: FakeArgo, status: int
) -> None:
    fake_argo.fail_next_lints(1, status)  # a 500 of an outage is codes.Internal, not Unknown
    with pytest.raises(ArgoTransientError) as caught:
        await argo.lint(workflow())
    assert not isinstance(caught.value, ArgoLintError)
    assert await ArgoEngine(argo).lint(workflow()) is None  # and it works again


async def test_no_answer_is_transient(argo: ArgoClient, fake_argo: FakeArgo) -> None:
    fake_argo.drop_next(1)
    with pytest.raises(ArgoTransientError):
        await argo.lint(workflow())
