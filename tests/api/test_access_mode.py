"""`ACCESS_MODE` as ogdc-runner 0.4.2 (dataone-auth) means it, against the real service.

`authenticated` (the default) needs a token on every closed route; `read_only`
lets anyone read and nobody change anything; `open` lets anyone do anything.
"""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import Api
from tests.support.service import Service


def _started(env: dict[str, str], mode: str) -> Service:
    return Service({**env, "ACCESS_MODE": mode})


def test_authenticated_is_the_default(api: Api) -> None:
    response = api.call("GET", "/users")
    assert response.status_code == 401
    assert api.call("GET", "/login").status_code == 404  # no provider configured


def test_read_only_lets_anyone_read_and_nobody_write(module_db_env: dict[str, str]) -> None:
    with _started(module_db_env, "read_only") as service:
        api = Api(service)
        assert api.call("GET", "/users").status_code == 200
        admin = api.admin_token()
        refused = api.create_user(admin, f"ro-{uuid.uuid4().hex[:8]}", "long enough password")
        assert refused.status_code == 403
        assert "read-only (ACCESS_MODE=read_only)" in refused.json()["detail"]
        login = api.call("GET", "/login")
        assert login.status_code == 403
        assert login.json()["detail"] == "Sign-in is disabled: ACCESS_MODE is 'read_only'."


def test_open_lets_anyone_do_anything_and_still_checks_tokens(
    module_db_env: dict[str, str],
) -> None:
    with _started(module_db_env, "open") as service:
        api = Api(service)
        name = f"open-{uuid.uuid4().hex[:8]}"
        created = api.call("POST", "/create_user", data={"username": name, "password": "x" * 12})
        assert created.status_code == 201, created.text
        assert api.call("GET", "/user", api.login(name, "x" * 12)).json() == {"current_user": name}
        assert api.call("GET", "/user", "not-a-token").status_code == 401


@pytest.mark.parametrize("mode", ["closed", ""])
def test_an_unknown_mode_stops_the_start(module_db_env: dict[str, str], mode: str) -> None:
    service = _started(module_db_env, mode)
    service.launch()
    if mode:
        assert service.wait() != 0
        assert "ACCESS_MODE: must be one of authenticated, read_only, open" in service.log_text()
    else:  # empty is unset: the default
        service.wait_ready()
        assert Api(service).call("GET", "/users").status_code == 401
        service.stop()
