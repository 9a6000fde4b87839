"""Password guessing is slowed down per user and per client address."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ogdc_hooks.api.accounts import PER_ADDRESS, PER_USER
from ogdc_hooks.auth.passwords import _CONTEXT, _dummy_hash, hash_password
from ogdc_hooks.auth.throttle import Limit, LoginThrottle
from tests.api.conftest import ADMIN_PASSWORD, Api
from tests.support.service import Service

PASSWORD = "the right password"


@pytest.fixture
def fresh_api(api_env: dict[str, str]) -> Iterator[Api]:
    """A service of this test alone: throttling state is per process."""
    with Service(api_env) as service:
        yield Api(service)


def _assert_throttled(response: requests.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json() == {"detail": "Too many failed logins; try again later."}
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 300
    return retry_after


def test_wrong_passwords_for_one_user_lock_that_user_only(fresh_api: Api) -> None:
    admin = fresh_api.admin_token()
    for name in ("victim", "bystander"):
        assert fresh_api.create_user(admin, name, PASSWORD).status_code == 201
    for _ in range(PER_USER.failures):
        assert fresh_api.token("victim", "guess").status_code == 401
    _assert_throttled(fresh_api.token("victim", "guess"))
    # Even the right password waits: a guess must not learn it was right.
    _assert_throttled(fresh_api.token("victim", PASSWORD))
    assert fresh_api.token("bystander", PASSWORD).status_code == 200


def test_a_success_clears_the_users_failures(fresh_api: Api) -> None:
    admin = fresh_api.admin_token()
    assert fresh_api.create_user(admin, "forgetful", PASSWORD).status_code == 201
    for _ in range(3):
        for _ in range(PER_USER.failures - 1):
            assert fresh_api.token("forgetful", "typo").status_code == 401
        assert fresh_api.token("forgetful", PASSWORD).status_code == 200


def test_wrong_passwords_from_one_address_lock_the_address(fresh_api: Api) -> None:
    for number in range(PER_ADDRESS.failures):
        assert fresh_api.token(f"nobody-{number}", "guess").status_code == 401
    _assert_throttled(fresh_api.token("admin", ADMIN_PASSWORD))


def test_the_throttle_window_slides_and_forgets() -> None:
    throttle = LoginThrottle()
    limit = Limit(failures=2, window=10.0)
    keys = (("user:a", limit),)
    assert throttle.admit(keys, now=0.0) == 0
    assert throttle.admit(keys, now=1.0) == 0
    assert throttle.admit(keys, now=2.0) == pytest.approx(8.0)
    assert throttle.admit(keys, now=10.5) == 0  # the failure at 0 left the window
    throttle.forgive(("user:a",), at=10.5)
    assert throttle.admit(keys, now=10.6) == 0


def test_the_throttle_keeps_a_bounded_number_of_keys() -> None:
    throttle = LoginThrottle(max_keys=3)
    limit = Limit(failures=1, window=100.0)
    for number in range(5):
        assert throttle.admit(((f"user:{number}", limit),), now=float(number)) == 0
    assert throttle.admit((("user:4", limit),), now=5.0) > 0  # the newest is remembered
    assert throttle.admit((("user:0", limit),), now=5.0) == 0  # the oldest was forgotten


async def test_an_unknown_user_costs_the_same_argon2_work_as_a_real_one() -> None:
    # A failed login takes as long either way because the dummy hash has the
    # parameters of every real hash (the time itself is not asserted).
    real = await hash_password("anything at all")
    assert _CONTEXT.identify(_dummy_hash()) == _CONTEXT.identify(real) == "argon2"
    assert _dummy_hash().split("$")[2:4] == real.split("$")[2:4]  # version, m/t/p


def test_parallel_logins_of_one_user_wait_their_turn_instead_of_being_refused(
    fresh_api: Api,
) -> None:
    admin = fresh_api.admin_token()
    assert fresh_api.create_user(admin, "busy", PASSWORD).status_code == 201
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: fresh_api.token("busy", PASSWORD), range(12)))
    assert [answer.status_code for answer in answers] == [200] * 12


async def test_turns_admit_as_many_at_once_as_the_limit_and_are_then_forgotten() -> None:
    throttle = LoginThrottle()
    under_way: list[int] = []
    current = 0

    async def login() -> None:
        nonlocal current
        async with throttle.turn("user:a", Limit(failures=2, window=1.0)):
            current += 1
            under_way.append(current)
            await asyncio.sleep(0.01)
            current -= 1

    await asyncio.gather(*(login() for _ in range(5)))
    assert len(under_way) == 5
    assert max(under_way) == 2
    assert throttle._turns == {}
