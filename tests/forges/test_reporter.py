"""The GitHub reporter against the fake GitHub over real HTTP: App and token mode,
batching, caching of installation tokens, rate limits and errors, and no token leaking."""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import pytest

from ogdc_hooks.forges.base import CommitReport, RunState
from ogdc_hooks.forges.github.errors import PermanentForgeError, TransientForgeError
from ogdc_hooks.forges.github.reporter import GitHubReporter, make_reporter
from ogdc_hooks.recipes.problems import Problem
from ogdc_hooks.settings import Secret, Settings, SettingsError
from tests.fakes.github import AppKey, FakeClock, FakeGitHub, Fault
from tests.forges.conftest import APP_ID, INSTALLATION_ID, REPOSITORY, SHA

ARGO = "https://argo.example/workflows/qgnet/ogdc-seal-tags-x7k2p"
CREDENTIAL = re.compile(r"gh[ps]_[A-Za-z0-9]{20,}|eyJ[A-Za-z0-9_-]+\.")


def report(state: RunState, name: str = "ogdc/seal-tags", **changes: object) -> CommitReport:
    fields: dict[str, object] = {
        "repository": REPOSITORY,
        "commit_sha": SHA,
        "name": name,
        "state": state,
        "title": state.value.replace("_", " ").capitalize(),
        "summary": f"The recipe is {state.value}.",
        "external_id": f"run-{name}",
        "details_url": ARGO if state is not RunState.QUEUED else None,
    }
    fields.update(changes)
    return CommitReport(**fields)  # type: ignore[arg-type]


def problems(count: int) -> tuple[Problem, ...]:
    return tuple(
        Problem("recipes/seal-tags/meta.yml", line, 3, "input.params[0].type", f"bad {line}")
        for line in range(1, count + 1)
    )


async def test_app_mode_follows_a_run_from_queued_to_success(
    app_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    check_run_id = await app_reporter.report(report(RunState.QUEUED), None, INSTALLATION_ID)
    assert check_run_id is not None
    assert await app_reporter.report(report(RunState.RUNNING), check_run_id, INSTALLATION_ID) == (
        check_run_id
    )
    assert await app_reporter.report(report(RunState.SUCCEEDED), check_run_id, INSTALLATION_ID) == (
        check_run_id
    )
    (run,) = github.runs(REPOSITORY, SHA)
    assert (run.name, run.status, run.conclusion) == ("ogdc/seal-tags", "completed", "success")
    assert run.details_url == ARGO and run.external_id == "run-ogdc/seal-tags"
    assert [body["status"] for body in run.history] == ["queued", "in_progress", "completed"]
    assert run.output["title"] == "Succeeded"
    assert github.exchanges == [INSTALLATION_ID]  # one token for the three reports
    assert github.statuses == {}


async def test_a_dry_run_is_neutral_and_a_rejected_push_fails(
    app_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    await app_reporter.report(report(RunState.DRY_RUN), None, INSTALLATION_ID)
    await app_reporter.report(report(RunState.REJECTED, name="ogdc"), None, INSTALLATION_ID)
    conclusions = {run.name: run.conclusion for run in github.runs(REPOSITORY, SHA)}
    assert conclusions == {"ogdc/seal-tags": "neutral", "ogdc": "failure"}


async def test_the_installation_is_looked_up_once_when_not_known(
    app_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    await app_reporter.report(report(RunState.QUEUED, name="ogdc/a"), None)
    await app_reporter.report(report(RunState.QUEUED, name="ogdc/b"), None)
    assert len(github.requests_to("GET", r"/repos/nsidc/ogdc-recipes/installation$")) == 1
    assert github.exchanges == [INSTALLATION_ID]


async def test_concurrent_reports_share_one_token_exchange(
    app_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    names = [f"ogdc/recipe-{n}" for n in range(12)]
    await asyncio.gather(
        *(
            app_reporter.report(report(RunState.QUEUED, name), None, INSTALLATION_ID)
            for name in names
        )
    )
    assert github.exchanges == [INSTALLATION_ID]
    assert sorted(run.name for run in github.runs(REPOSITORY, SHA)) == sorted(names)


async def test_the_installation_token_is_renewed_five_minutes_before_it_expires(
    app_reporter: GitHubReporter, github: FakeGitHub, clock: FakeClock
) -> None:
    await app_reporter.report(report(RunState.QUEUED, name="ogdc/a"), None, INSTALLATION_ID)
    clock.advance(54 * 60)  # six minutes left: still good
    await app_reporter.report(report(RunState.QUEUED, name="ogdc/b"), None, INSTALLATION_ID)
    assert github.exchanges == [INSTALLATION_ID]
    clock.advance(2 * 60)  # four minutes left: renew
    await app_reporter.report(report(RunState.QUEUED, name="ogdc/c"), None, INSTALLATION_ID)
    assert github.exchanges == [INSTALLATION_ID, INSTALLATION_ID]
    tokens = {r.headers["Authorization"] for r in github.requests_to("POST", "/check-runs$")}
    assert len(tokens) == 2


async def test_a_revoked_installation_token_is_replaced_once(
    app_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    check_run_id = await app_reporter.report(report(RunState.QUEUED), None, INSTALLATION_ID)
    github.revoke_installation_tokens(INSTALLATION_ID)
    await app_reporter.report(report(RunState.RUNNING), check_run_id, INSTALLATION_ID)
    assert github.exchanges == [INSTALLATION_ID, INSTALLATION_ID]
    assert github.check_runs[check_run_id].status == "in_progress"


async def test_120_problems_are_sent_in_three_requests(
    app_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    invalid = report(RunState.INVALID, problems=problems(120))
    check_run_id = await app_reporter.report(invalid, None, INSTALLATION_ID)
    assert check_run_id is not None
    writes = [r for r in github.requests if "/check-runs" in r.path and r.method != "GET"]
    assert [(r.method, len(r.body["output"].get("annotations", []))) for r in writes] == [
        ("POST", 50),
        ("PATCH", 50),
        ("PATCH", 20),
    ]
    run = github.check_runs[check_run_id]
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert [a["start_line"] for a in run.annotations] == list(range(1, 121))
    assert "120 problem(s) found" in run.output["text"]


async def test_a_report_retried_after_failing_half_way_leaves_one_run_and_no_duplicates(
    app_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    invalid = report(RunState.INVALID, problems=problems(120))
    github.inject(Fault.server_error(502), path=r"/check-runs/\d+$", method="PATCH")
    with pytest.raises(TransientForgeError):
        await app_reporter.report(invalid, None, INSTALLATION_ID)
    (run,) = github.runs(REPOSITORY, SHA)
    assert len(run.annotations) == 50
    # The queue retries with no id: the run is found again by its external id.
    assert await app_reporter.report(invalid, None, INSTALLATION_ID) == run.id
    assert len(github.runs(REPOSITORY, SHA)) == 1
    assert [a["start_line"] for a in run.annotations] == list(range(1, 121))
    # And once more, all done already: nothing is appended twice.
    await app_reporter.report(invalid, run.id, INSTALLATION_ID)
    assert len(run.annotations) == 120


async def test_token_mode_sets_commit_statuses(
    token_reporter: GitHubReporter, github: FakeGitHub, personal_token: str
) -> None:
    long_title = "Failed: " + "step failed because of a long reason " * 10
    assert await token_reporter.report(report(RunState.RUNNING), None) is None
    assert await token_reporter.report(report(RunState.FAILED, title=long_title), None) is None
    history = github.status_history(REPOSITORY, SHA, "ogdc/seal-tags")
    assert [s.state for s in history] == ["pending", "failure"]
    assert history[-1].target_url == ARGO
    assert history[-1].description is not None and len(history[-1].description) == 140
    assert github.check_runs == {} and github.exchanges == []
    assert {r.headers["Authorization"] for r in github.requests} == {f"token {personal_token}"}


async def test_a_429_is_transient_with_retry_after_and_github_is_left_alone_until_then(
    app_reporter: GitHubReporter, github: FakeGitHub, clock: FakeClock
) -> None:
    check_run_id = await app_reporter.report(report(RunState.QUEUED), None, INSTALLATION_ID)
    github.inject(Fault.too_many_requests(retry_after=7), path="/check-runs/")
    with pytest.raises(TransientForgeError) as caught:
        await app_reporter.report(report(RunState.RUNNING), check_run_id, INSTALLATION_ID)
    assert caught.value.retry_after == 7
    sent = len(github.requests)
    with pytest.raises(TransientForgeError) as again:
        await app_reporter.report(report(RunState.RUNNING), check_run_id, INSTALLATION_ID)
    assert len(github.requests) == sent  # not even asked
    assert again.value.retry_after is not None and 0 < again.value.retry_after <= 7
    clock.advance(7)
    await app_reporter.report(report(RunState.RUNNING), check_run_id, INSTALLATION_ID)
    assert github.check_runs[check_run_id].status == "in_progress"


async def test_an_exhausted_rate_limit_waits_until_the_reset(
    token_reporter: GitHubReporter, github: FakeGitHub, clock: FakeClock
) -> None:
    github.inject(Fault.rate_limited(reset_at=clock() + 1800))
    with pytest.raises(TransientForgeError) as caught:
        await token_reporter.report(report(RunState.RUNNING), None)
    assert caught.value.retry_after == pytest.approx(1800, abs=1)


async def test_a_secondary_rate_limit_without_retry_after_waits_a_minute(
    token_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    github.inject(Fault.secondary_rate_limit())
    with pytest.raises(TransientForgeError) as caught:
        await token_reporter.report(report(RunState.RUNNING), None)
    assert caught.value.retry_after == 60
    assert "secondary rate limit" in str(caught.value)


async def test_the_fake_counts_its_own_rate_limit_too(
    token_reporter: GitHubReporter, github: FakeGitHub, clock: FakeClock
) -> None:
    github.rate_limit = 1
    await token_reporter.report(report(RunState.RUNNING), None)
    with pytest.raises(TransientForgeError) as caught:
        await token_reporter.report(report(RunState.SUCCEEDED), None)
    assert caught.value.retry_after == pytest.approx(3600, abs=1)


@pytest.mark.parametrize(
    "fault", [Fault.server_error(500), Fault.server_error(502), Fault.dropped(), Fault.timeout(5)]
)
async def test_outages_are_transient(
    token_reporter: GitHubReporter, github: FakeGitHub, fault: Fault
) -> None:
    github.inject(fault)
    with pytest.raises(TransientForgeError):
        await token_reporter.report(report(RunState.RUNNING), None)
    await token_reporter.report(report(RunState.RUNNING), None)  # the next one goes through
    assert len(github.status_history(REPOSITORY, SHA, "ogdc/seal-tags")) == 1


async def test_github_unreachable_is_transient(
    session: aiohttp.ClientSession, personal_token: str
) -> None:
    settings = Settings(github_api_url="http://127.0.0.1:9", github_token=Secret(personal_token))
    reporter = make_reporter(settings, session, timeout=2.0)
    assert reporter is not None
    with pytest.raises(TransientForgeError) as caught:
        await reporter.report(report(RunState.RUNNING), None)
    assert "GitHub unreachable" in str(caught.value)


async def test_validation_errors_are_permanent_with_githubs_message(
    app_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    github.repositories[REPOSITORY.lower()].commits = {"f" * 40}
    with pytest.raises(PermanentForgeError) as caught:
        await app_reporter.report(report(RunState.QUEUED), None, INSTALLATION_ID)
    assert caught.value.status == 422
    assert str(caught.value) == f"GitHub answered 422: No commit found for SHA: {SHA}"


async def test_a_repository_without_the_app_is_a_permanent_error(
    app_reporter: GitHubReporter, github: FakeGitHub
) -> None:
    github.add_repository("someone/else")
    with pytest.raises(PermanentForgeError) as caught:
        await app_reporter.report(report(RunState.QUEUED, repository="someone/else"), None)
    assert caught.value.status == 404


async def test_a_refused_personal_token_is_a_permanent_error(
    token_reporter: GitHubReporter, github: FakeGitHub, personal_token: str
) -> None:
    github.revoke(personal_token)
    with pytest.raises(PermanentForgeError) as caught:
        await token_reporter.report(report(RunState.RUNNING), None)
    assert str(caught.value) == "GitHub answered 401: Bad credentials"


@pytest.mark.parametrize(
    "changes",
    [{"repository": "../../etc"}, {"repository": "a/b/c"}, {"commit_sha": "HEAD"}],
)
async def test_malformed_targets_are_refused_before_any_request(
    token_reporter: GitHubReporter, github: FakeGitHub, changes: dict[str, str]
) -> None:
    with pytest.raises(PermanentForgeError):
        await token_reporter.report(report(RunState.RUNNING, **changes), None)
    assert github.requests == []


async def test_tokens_never_reach_errors_or_logs(
    app_reporter: GitHubReporter,
    github: FakeGitHub,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[Exception] = []
    check_run_id = await app_reporter.report(report(RunState.QUEUED), None, INSTALLATION_ID)
    (token,) = [t.value for t in github.tokens.values() if t.installation_id]
    leaky = Fault(422, {"message": f"Validation Failed: token {token} is not allowed here"})
    for fault in (leaky, Fault.server_error(500), Fault.too_many_requests(1), Fault.dropped()):
        github.inject(fault)
        try:
            await app_reporter.report(report(RunState.RUNNING), check_run_id, INSTALLATION_ID)
        except (TransientForgeError, PermanentForgeError) as err:
            errors.append(err)
        clock.advance(5)  # past any Retry-After
    assert len(errors) == 4
    assert "[redacted]" in str(errors[0])
    clone_token = await app_reporter.clone_token(REPOSITORY, INSTALLATION_ID)
    assert clone_token == token
    texts = [caplog.text, *(str(err) for err in errors), *(repr(err) for err in errors)]
    for text in texts:
        assert token not in text
        assert not CREDENTIAL.search(text), text


async def test_clone_token_and_default_branch(
    app_reporter: GitHubReporter,
    token_reporter: GitHubReporter,
    github: FakeGitHub,
    personal_token: str,
) -> None:
    github.repositories[REPOSITORY.lower()].default_branch = "trunk"
    assert await app_reporter.default_branch(REPOSITORY) == "trunk"
    assert (await app_reporter.clone_token(REPOSITORY)).startswith("ghs_")
    assert await token_reporter.default_branch(REPOSITORY) == "trunk"
    assert await token_reporter.clone_token(REPOSITORY) == personal_token


async def test_github_enterprise_base_url_with_api_v3(
    session: aiohttp.ClientSession, github_app_key: AppKey
) -> None:
    enterprise = FakeGitHub(prefix="/api/v3")
    enterprise.add_app(APP_ID, github_app_key.public_key)
    enterprise.add_installation(
        INSTALLATION_ID, app_id=APP_ID, account="o", repositories=[REPOSITORY]
    )
    url = await enterprise.start()
    try:
        assert url.endswith("/api/v3")
        settings = Settings(
            github_api_url=url,
            github_app_id=str(APP_ID),
            github_app_private_key=Secret(github_app_key.private_pem),
        )
        reporter = make_reporter(settings, session)
        assert reporter is not None
        check_run_id = await reporter.report(report(RunState.QUEUED), None)
        assert check_run_id in enterprise.check_runs
    finally:
        await enterprise.stop()


def test_make_reporter_follows_the_settings(
    session: aiohttp.ClientSession, github_app_key: AppKey
) -> None:
    assert make_reporter(Settings(), session) is None
    token_only = make_reporter(Settings(github_token=Secret("ghp_x")), session)
    assert token_only is not None and not token_only.client.app_mode
    both = Settings(
        github_token=Secret("ghp_x"),
        github_app_id="1",
        github_app_private_key=Secret(github_app_key.private_pem),
    )
    app = make_reporter(both, session)
    assert app is not None and app.client.app_mode
    broken = Settings(github_app_id="1", github_app_private_key=Secret("-----BEGIN nonsense"))
    with pytest.raises(SettingsError, match=r"^GITHUB_APP_PRIVATE_KEY: not a PEM private key"):
        make_reporter(broken, session)


async def test_every_request_records_its_outcome_and_the_rate_limit_left(
    session: aiohttp.ClientSession, github: FakeGitHub, personal_token: str, clock: FakeClock
) -> None:
    heard: list[tuple[str, str, int | None]] = []
    settings = Settings(github_api_url=github.url, github_token=Secret(personal_token))
    reporter = make_reporter(
        settings,
        session,
        timeout=1.0,
        clock=clock,
        record=lambda *answer: heard.append(answer),
    )
    assert reporter is not None
    await reporter.report(report(RunState.RUNNING), None)
    github.inject(Fault.server_error(502))
    with pytest.raises(TransientForgeError):
        await reporter.report(report(RunState.SUCCEEDED), None)
    github.inject(Fault(422, {"message": "Validation Failed"}))
    with pytest.raises(PermanentForgeError):
        await reporter.report(report(RunState.SUCCEEDED), None)
    assert [(outcome, credential) for outcome, credential, _ in heard] == [
        ("ok", "token"),
        ("transient", "token"),
        ("permanent", "token"),
    ]
    remaining = heard[0][2]
    assert remaining is not None and remaining > 0
