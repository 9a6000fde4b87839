"""`--forge-login HOST:LOGIN` and `--remove-forge-login HOST` against the real service."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import CliRunner, one_line_error


def _listing(run_cli: CliRunner, env: dict[str, str]) -> dict[str, list[str]]:
    done = run_cli("users", "list", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "GITHUB", "LOGIN", "ADMIN", "ACTIVE", "FORGE", "LOGINS"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


def test_create_user_with_forge_logins_then_list_them(
    run_cli: CliRunner, admin_env: dict[str, str]
) -> None:
    done = run_cli(
        "create-user",
        "mia",
        "mia-password",
        "--github-login",
        "Mia-GH",
        "--forge-login",
        "Codeberg.org:mia.c",
        "--forge-login",
        "forge.lab:3000:mia_l",
        env=admin_env,
    )
    assert (done.returncode, done.stderr) == (0, "")
    rows = _listing(run_cli, admin_env)
    assert rows["mia"] == [
        "Mia-GH",
        "no",
        "yes",
        "codeberg.org:mia.c,forge.lab:3000:mia_l,github.com:Mia-GH",
    ]
    assert rows["admin"] == ["-", "yes", "yes", "-"]


def test_update_adds_replaces_and_removes_forge_logins(
    run_cli: CliRunner, admin_env: dict[str, str]
) -> None:
    assert run_cli("create-user", "ned", "ned-password", env=admin_env).returncode == 0
    added = run_cli(
        "users", "update", "ned", "--forge-login", "codeberg.org:ned", "--json", env=admin_env
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["forge_logins"] == {"codeberg.org": "ned"}
    changed = run_cli(
        "users",
        "update",
        "ned",
        "--forge-login",
        "github.com:Ned-GH",
        "--remove-forge-login",
        "CODEBERG.org",
        "--json",
        env=admin_env,
    )
    user = json.loads(changed.stdout)
    assert (user["forge_logins"], user["github_login"]) == ({"github.com": "Ned-GH"}, "Ned-GH")
    shown = run_cli("users", "update", "ned", "--remove-forge-login", "github.com", env=admin_env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "User 'ned' updated."
    assert shown.stdout.splitlines()[1].split() == ["NAME", "GITHUB", "LOGIN", "ADMIN", "ACTIVE"]


def test_a_forge_login_of_another_user_names_host_and_login(
    run_cli: CliRunner, admin_env: dict[str, str]
) -> None:
    first = run_cli(
        "create-user", "oli", "oli-password", "--forge-login", "codeberg.org:Oli", env=admin_env
    )
    assert first.returncode == 0, first.stderr
    line = one_line_error(
        run_cli(
            "create-user",
            "oli2",
            "oli-password",
            "--forge-login",
            "codeberg.org:OLI",
            env=admin_env,
        )
    )
    assert "HTTP 409" in line
    assert "'OLI' on codeberg.org" in line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--forge-login", "codeberg.org"], "'codeberg.org' has no colon: give HOST:LOGIN"),
        (["--forge-login", ":alice"], "the host is empty"),
        (["--forge-login", "codeberg.org:"], "the login is empty"),
        (["--forge-login", "code_berg.org:alice"], "'code_berg.org' is not a host name"),
        (["--forge-login", "codeberg.org:a__b"], "'a__b' is not a login: letters and digits"),
        (["--forge-login", "h.org:a", "--forge-login", "H.org:b"], "names h.org twice"),
    ],
)
def test_a_malformed_forge_login_is_a_usage_error_in_words(
    run_cli: CliRunner, admin_env: dict[str, str], args: list[str], words: str
) -> None:
    done = run_cli("create-user", "pam", "pam-password", *args, env=admin_env)
    assert done.returncode == 2, done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr and "[A-Za-z" not in done.stderr


def test_giving_and_removing_one_host_is_a_usage_error(
    run_cli: CliRunner, admin_env: dict[str, str]
) -> None:
    done = run_cli(
        "users",
        "update",
        "pam",
        "--forge-login",
        "codeberg.org:pam",
        "--remove-forge-login",
        "codeberg.org",
        env=admin_env,
    )
    assert done.returncode == 2
    assert "codeberg.org is both given a login and removed" in done.stderr
    bad = run_cli("users", "update", "pam", "--remove-forge-login", "no host", env=admin_env)
    assert bad.returncode == 2
    assert "argument --remove-forge-login: 'no host' is not a host name" in bad.stderr
