"""The rules of `/submit`'s authority on their own: which hosts, which check names."""

from __future__ import annotations

import pytest

from ogdc_hooks.pipeline.authority import NotAllowed, check_fetchable
from ogdc_hooks.pipeline.commit_report import check_name
from ogdc_hooks.pipeline.sources import without_credentials
from ogdc_hooks.settings import Settings, load_settings

PUBLIC_FORGE = "https://140.82.112.3"  # a public address, so no name needs resolving here


def _settings(**env: str) -> Settings:
    return load_settings({"OGDC_JWT_SECRET_KEY": "k" * 40, "OGDC_ADMIN_PASSWORD": "x", **env})


@pytest.mark.parametrize(
    ("env", "url", "allowed"),
    [
        # By default: the forge's web host, on the scheme's port, if it is a public address.
        ({"GITHUB_API_URL": PUBLIC_FORGE + "/api/v3"}, PUBLIC_FORGE + "/o/r.git", True),
        ({"GITHUB_API_URL": PUBLIC_FORGE + "/api/v3"}, PUBLIC_FORGE + ":8443/o/r.git", False),
        ({"GITHUB_API_URL": PUBLIC_FORGE + "/api/v3"}, "https://140.82.112.4/o/r.git", False),
        ({"GITHUB_API_URL": "http://127.0.0.1:3000"}, "http://127.0.0.1:3000/o/r.git", False),
        ({"GITHUB_API_URL": "http://10.0.0.7"}, "http://10.0.0.7/o/r.git", False),
        # Listed explicitly: whatever the host resolves to; only the listed port.
        ({"OGDC_SUBMIT_ALLOWED_HOSTS": "127.0.0.1:3000"}, "http://127.0.0.1:3000/r.git", True),
        ({"OGDC_SUBMIT_ALLOWED_HOSTS": "127.0.0.1:3000"}, "http://127.0.0.1:3001/r.git", False),
        ({"OGDC_SUBMIT_ALLOWED_HOSTS": "10.0.0.7"}, "https://10.0.0.7/r.git", True),
        ({"OGDC_SUBMIT_ALLOWED_HOSTS": "10.0.0.7"}, "https://10.0.0.7:444/r.git", False),
        ({"OGDC_SUBMIT_ALLOWED_HOSTS": "[::1]:80"}, "http://[::1]/r.git", True),
        # A list replaces the default.
        ({"OGDC_SUBMIT_ALLOWED_HOSTS": "10.0.0.7"}, "https://github.com/o/r.git", False),
        ({}, "http://169.254.169.254/latest/meta-data", False),
    ],
)
async def test_which_hosts_submit_may_fetch_from(
    env: dict[str, str], url: str, allowed: bool
) -> None:
    settings = _settings(**env)
    if allowed:
        await check_fetchable(settings, url)
    else:
        with pytest.raises(NotAllowed, match="OGDC_SUBMIT_ALLOWED_HOSTS"):
            await check_fetchable(settings, url)


def test_a_check_is_named_after_the_recipes_whole_path() -> None:
    assert check_name("recipes/deploy") == "ogdc/recipes/deploy"
    assert check_name("decoy/deploy") != check_name("recipes/deploy")
    assert check_name("") == "ogdc"


def test_credentials_are_stripped_from_urls() -> None:
    assert without_credentials("https://x:pw@github.com/o/r.git") == "https://github.com/o/r.git"
    assert without_credentials("https://tok@github.com/o/r.git") == "https://github.com/o/r.git"
    assert without_credentials("https://github.com/o/r.git") == "https://github.com/o/r.git"
