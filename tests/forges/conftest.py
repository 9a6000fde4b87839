"""Fixtures for the GitHub forge tests: a fake GitHub with one App installed, and reporters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from ogdc_hooks.forges.github.reporter import GitHubReporter, make_reporter
from ogdc_hooks.settings import Secret, Settings
from tests.fakes.github import AppKey, FakeClock, FakeGitHub, fake_github, github_app_key

__all__ = ["fake_github", "github_app_key"]  # fixtures other test folders may import from here

APP_ID = 4242
INSTALLATION_ID = 77
REPOSITORY = "nsidc/ogdc-recipes"
SHA = "a" * 40


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def github(clock: FakeClock, github_app_key: AppKey) -> AsyncIterator[FakeGitHub]:
    """A fake GitHub sharing `clock`, with the App installed on `REPOSITORY`."""
    fake = FakeGitHub(clock=clock)
    fake.add_app(APP_ID, github_app_key.public_key)
    fake.add_installation(
        INSTALLATION_ID, app_id=APP_ID, account="nsidc", repositories=[REPOSITORY]
    )
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def app_settings(github: FakeGitHub, github_app_key: AppKey) -> Settings:
    return Settings(
        github_api_url=github.url,
        github_app_id=str(APP_ID),
        github_app_private_key=Secret(github_app_key.private_pem),
    )


@pytest.fixture
def app_reporter(
    app_settings: Settings, session: aiohttp.ClientSession, clock: FakeClock
) -> GitHubReporter:
    reporter = make_reporter(app_settings, session, timeout=1.0, clock=clock)
    assert reporter is not None
    return reporter


@pytest.fixture
def personal_token(github: FakeGitHub) -> str:
    return github.add_token()


@pytest.fixture
def token_reporter(
    github: FakeGitHub, personal_token: str, session: aiohttp.ClientSession, clock: FakeClock
) -> GitHubReporter:
    settings = Settings(github_api_url=github.url, github_token=Secret(personal_token))
    reporter = make_reporter(settings, session, timeout=1.0, clock=clock)
    assert reporter is not None
    return reporter
