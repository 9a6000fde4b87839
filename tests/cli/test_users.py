"""`create-user` and `users list|delete` as a user runs them, against the real service."""

from __future__ import annotations

from tests.cli.conftest import CliRunner, one_line_error


def _rows(listing: str) -> dict[str, list[str]]:
    """The table printed by `users list`, by user name."""
    lines = listing.splitlines()
    assert lines[0].split() == ["NAME", "GITHUB", "LOGIN", "ADMIN", "ACTIVE"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


def test_create_user_then_list_it(run_cli: CliRunner, admin_env: dict[str, str]) -> None:
    done = run_cli(
        "create-user", "carol", "carol-password", "--github-login", "Carol-GH", env=admin_env
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == 'User with username "carol" created.\n'

    listing = run_cli("users", "list", env=admin_env)
    assert listing.returncode == 0, listing.stderr
    rows = _rows(listing.stdout)
    assert rows["carol"] == ["Carol-GH", "no", "yes"]
    assert rows["admin"] == ["-", "yes", "yes"]


def test_new_user_logs_in_but_is_no_admin(run_cli: CliRunner, admin_env: dict[str, str]) -> None:
    assert run_cli("create-user", "dora", "dora-password", env=admin_env).returncode == 0
    as_dora = {**admin_env, "OGDC_API_USERNAME": "dora", "OGDC_API_PASSWORD": "dora-password"}
    line = one_line_error(run_cli("users", "list", env=as_dora))
    assert line == (
        "ogdc-hooks: error: the API answered GET /users with HTTP 403: This needs an admin's token."
    )


def test_duplicate_user(run_cli: CliRunner, admin_env: dict[str, str]) -> None:
    assert run_cli("create-user", "erik", "erik-password", env=admin_env).returncode == 0
    line = one_line_error(run_cli("create-user", "erik", "other-password", env=admin_env))
    assert "the API answered POST /create_user with HTTP 409" in line
    assert "'erik' already exists" in line


def test_duplicate_github_login_ignoring_case(
    run_cli: CliRunner, admin_env: dict[str, str]
) -> None:
    first = run_cli("create-user", "fay", "fay-password", "--github-login", "Fay-GH", env=admin_env)
    assert first.returncode == 0, first.stderr
    done = run_cli("create-user", "fay2", "fay-password", "--github-login", "fay-gh", env=admin_env)
    line = one_line_error(done)
    assert "HTTP 409" in line
    assert "github_login" in line


def test_invalid_input_shows_the_servers_reason(
    run_cli: CliRunner, admin_env: dict[str, str]
) -> None:
    line = one_line_error(run_cli("create-user", "gus", "short", env=admin_env))
    assert line == (
        "ogdc-hooks: error: the API answered POST /create_user with HTTP 422: "
        "password: must have at least 8 characters"
    )


def test_wrong_admin_password(run_cli: CliRunner, admin_env: dict[str, str]) -> None:
    wrong = {**admin_env, "OGDC_API_PASSWORD": "not-the-admin-password"}
    done = run_cli("create-user", "hal", "hal-password", env=wrong)
    line = one_line_error(done)
    assert line == (
        f"ogdc-hooks: error: the API at {admin_env['OGDC_API_URL']} refused the credentials "
        "of user 'admin'; check OGDC_API_USERNAME and OGDC_API_PASSWORD"
    )
    assert "not-the-admin-password" not in done.stdout + done.stderr
    assert "hal" not in _rows(run_cli("users", "list", env=admin_env).stdout)


def test_seed_spelling_of_the_password_variable(
    run_cli: CliRunner, admin_env: dict[str, str]
) -> None:
    seed = {**admin_env, "OGDC_API_password": admin_env["OGDC_API_PASSWORD"]}
    del seed["OGDC_API_PASSWORD"]
    done = run_cli("create-user", "ida", "ida-password", env=seed)
    assert done.returncode == 0, done.stderr


def test_delete_user(run_cli: CliRunner, admin_env: dict[str, str]) -> None:
    assert run_cli("create-user", "jan", "jan-password", env=admin_env).returncode == 0
    done = run_cli("users", "delete", "jan", env=admin_env)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == 'User with username "jan" deleted.\n'
    assert "jan" not in _rows(run_cli("users", "list", env=admin_env).stdout)

    line = one_line_error(run_cli("users", "delete", "jan", env=admin_env))
    assert line == (
        "ogdc-hooks: error: the API answered DELETE /users/jan with HTTP 404: No user named 'jan'."
    )


def test_deleted_user_cannot_log_in(run_cli: CliRunner, admin_env: dict[str, str]) -> None:
    assert (
        run_cli(
            "create-user", "kim", "kim-password", "--github-login", "kim-gh", env=admin_env
        ).returncode
        == 0
    )
    assert run_cli("users", "delete", "kim", env=admin_env).returncode == 0
    as_kim = {**admin_env, "OGDC_API_USERNAME": "kim", "OGDC_API_PASSWORD": "kim-password"}
    assert "refused the credentials of user 'kim'" in one_line_error(
        run_cli("users", "list", env=as_kim)
    )


def test_admin_cannot_delete_itself(run_cli: CliRunner, admin_env: dict[str, str]) -> None:
    line = one_line_error(run_cli("users", "delete", "admin", env=admin_env))
    assert "HTTP 409: You cannot delete your own account." in line


def test_repeated_wrong_passwords_are_throttled(
    run_cli: CliRunner, admin_env: dict[str, str]
) -> None:
    assert run_cli("create-user", "lou", "lou-password", env=admin_env).returncode == 0
    as_lou = {**admin_env, "OGDC_API_USERNAME": "lou", "OGDC_API_PASSWORD": "wrong-password"}
    lines = [one_line_error(run_cli("users", "list", env=as_lou)) for _ in range(6)]
    assert "refused the credentials of user 'lou'" in lines[0]
    assert "HTTP 429: Too many failed logins; try again later. (retry after" in lines[-1]


def test_credentials_in_the_url_are_ignored(run_cli: CliRunner, admin_env: dict[str, str]) -> None:
    url = admin_env["OGDC_API_URL"].replace("http://", "http://someone:their-password@")
    done = run_cli("users", "list", env={**admin_env, "OGDC_API_URL": url})
    assert (done.returncode, done.stderr) == (0, "")
    assert "admin" in _rows(done.stdout)
