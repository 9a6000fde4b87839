"""The unknown-pusher message: who pushed, on which forge, and the exact command that adds
them; its first line fits a commit status's 140 characters and says it all by itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from ogdc_hooks.auth.rules import split_forge_login
from ogdc_hooks.auth.unknown_pusher import (
    HEADLINE_CHARS,
    headline_of,
    unknown_pusher_headline,
    unknown_pusher_message,
)
from ogdc_hooks.forges.github.statuses import status_body
from ogdc_hooks.pipeline.commit_report import commit_report
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.runstate import RunState

LONGEST_GITHUB_LOGIN = "a" * 39


def _rejected(message: str) -> RunRecord:
    now = datetime.now(UTC)
    return RunRecord(
        id=uuid.uuid4(),
        forge="github.com",
        repository="qgnet/recipes",
        clone_url="https://github.com/qgnet/recipes.git",
        commit_sha="c" * 40,
        ref="refs/heads/main",
        recipe="",
        attempt=1,
        trigger="push",
        requested_by=None,
        overwrite=True,
        dry_run=False,
        state=RunState.REJECTED,
        message=message,
        workflow_name=None,
        workflow=None,
        problems=None,
        check_run_id=None,
        report_error=None,
        installation_id=None,
        delivery_id="d-1",
        reports=True,
        progress=None,
        created_at=now,
        updated_at=now,
    )


def _command_in(text: str) -> tuple[str, str]:
    """The HOST:LOGIN of the `ogdc-hooks users update NAME --forge-login` the text names."""
    tail = text.split("ogdc-hooks users update NAME --forge-login ", 1)[1]
    return split_forge_login(tail.split()[0].rstrip("`,.;)"))


def test_the_status_description_says_who_pushed_and_the_command() -> None:
    message = unknown_pusher_message("GitHub", "github.com", "stranger")
    report = commit_report(_rejected(message), ui_base=None, namespace="qgnet")
    description = status_body(report)["description"]
    assert description == (
        "@stranger on GitHub is not an ogdc-hooks user. An admin runs: "
        "ogdc-hooks users update NAME --forge-login github.com:stranger"
    )
    assert report.title == description
    assert "@stranger" in report.summary and "create-user NAME PASSWORD" in report.summary


@pytest.mark.parametrize(
    ("label", "host", "login"),
    [
        ("GitHub", "github.com", "stranger"),
        ("GitHub", "github.com", LONGEST_GITHUB_LOGIN),
        ("GitHub", "ghe.example.com", LONGEST_GITHUB_LOGIN),
        ("Forgejo at codeberg.org", "codeberg.org", "alice"),
        ("Forgejo at git.example.org:3000", "git.example.org:3000", "b" * 40),
    ],
)
def test_the_headline_fits_and_holds_a_command_that_adds_exactly_this_login(
    label: str, host: str, login: str
) -> None:
    headline = unknown_pusher_headline(label, host, login)
    assert len(headline) <= HEADLINE_CHARS
    assert _command_in(headline) == (host, login)
    message = unknown_pusher_message(label, host, login)
    assert headline_of(message) == headline
    assert _command_in(message.split("\n\n", 1)[1]) == (host, login)
    assert f"ogdc-hooks create-user NAME PASSWORD --forge-login {host}:{login}" in message


def test_an_absurdly_long_host_is_cut_to_fit_and_still_names_the_pusher() -> None:
    headline = unknown_pusher_headline("Forgejo", "h" * 200 + ".org", "c" * 40)
    assert len(headline) == HEADLINE_CHARS
    assert headline.startswith("@" + "c" * 40 + " is not an ogdc-hooks user")
    assert headline.endswith("…")


@pytest.mark.parametrize("swept", [False, True])
def test_without_a_login_it_says_so(swept: bool) -> None:
    message = unknown_pusher_message("GitHub", "github.com", None, swept=swept)
    assert headline_of(message).startswith("Pushed by no GitHub account ogdc-hooks knows")
    assert "--forge-login github.com:LOGIN" in message
    assert ("sweep" in message) is swept
