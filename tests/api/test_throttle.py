"""Password guessing is slowed down per user and per client address, across replicas,
without letting an attacker at one address lock a user out at another."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import requests.adapters

from ogdc_hooks.auth.passwords import _CONTEXT, _dummy_hash, hash_password
from ogdc_hooks.auth.throttle import LoginThrottle, Rules
from ogdc_hooks.db.engine import Database, open_database
from ogdc_hooks.db.migrate import migrate
from ogdc_hooks.settings import load_settings
from tests.api.conftest import ADMIN_PASSWORD, JWT_KEY, Api
from tests.support.service import Service

RULES = Rules()
PER_USER, PER_ADDRESS = RULES.per_user, RULES.per_address

PASSWORD = "the right password"


@pytest.fixture
def fresh_api(api_env: dict[str, str]) -> Iterator[Api]:
    """A service of this test alone, on a database of its own (the counts live there)."""
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
    for _ in range(PER_USER):
        assert fresh_api.token("victim", "guess").status_code == 401
    _assert_throttled(fresh_api.token("victim", "guess"))
    # Even the right password waits: a guess must not learn it was right.
    _assert_throttled(fresh_api.token("victim", PASSWORD))
    assert fresh_api.token("bystander", PASSWORD).status_code == 200


def test_a_success_clears_the_users_failures(fresh_api: Api) -> None:
    admin = fresh_api.admin_token()
    assert fresh_api.create_user(admin, "forgetful", PASSWORD).status_code == 201
    for _ in range(3):
        for _ in range(PER_USER - 1):
            assert fresh_api.token("forgetful", "typo").status_code == 401
        assert fresh_api.token("forgetful", PASSWORD).status_code == 200


def test_wrong_passwords_from_one_address_lock_the_address(fresh_api: Api) -> None:
    for number in range(PER_ADDRESS):
        assert fresh_api.token(f"nobody-{number}", "guess").status_code == 401
    _assert_throttled(fresh_api.token("admin", ADMIN_PASSWORD))


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


def _token_from(api: Api, address: str, username: str, password: str) -> requests.Response:
    """`POST /token` from a chosen loopback address (the whole of 127.0.0.0/8 is local)."""
    with requests.Session() as session:
        adapter = _SourceAddressAdapter(address)
        session.mount("http://", adapter)
        return session.post(
            f"{api.url}/token", data={"username": username, "password": password}, timeout=30
        )


class _SourceAddressAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)  # type: ignore[no-untyped-call]


def test_an_attacker_at_one_address_cannot_lock_the_user_out_at_another(fresh_api: Api) -> None:
    attacker, owner = "127.0.0.2", "127.0.0.3"
    for _ in range(PER_USER):
        assert _token_from(fresh_api, attacker, "admin", "guess").status_code == 401
    _assert_throttled(_token_from(fresh_api, attacker, "admin", ADMIN_PASSWORD))
    assert _token_from(fresh_api, owner, "admin", ADMIN_PASSWORD).status_code == 200
    # The owner's success forgives only the owner's address: the attacker stays refused.
    _assert_throttled(_token_from(fresh_api, attacker, "admin", "guess"))
    # Once the user has PER_USER failures, a further address gets in only until it fails.
    other = "127.0.0.4"
    assert _token_from(fresh_api, other, "admin", "guess").status_code == 401
    _assert_throttled(_token_from(fresh_api, other, "admin", "guess"))
    assert "Traceback" not in fresh_api.service.log_text()


def test_two_replicas_on_one_database_share_the_counts(api_env: dict[str, str]) -> None:
    with Service(api_env) as one, Service(api_env) as two:
        first, second = Api(one), Api(two)
        admin = first.admin_token()
        assert first.create_user(admin, "shared", PASSWORD).status_code == 201
        for number in range(PER_USER):
            replica = first if number % 2 else second
            assert replica.token("shared", "guess").status_code == 401
        # Five failures spread over two replicas: both refuse the sixth guess.
        _assert_throttled(first.token("shared", "guess"))
        _assert_throttled(second.token("shared", PASSWORD))
        # Parallel guesses at both replicas at once: never more admitted than the limit.
        assert first.create_user(admin, "raced", PASSWORD).status_code == 201
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(
                pool.map(
                    lambda n: (first if n % 2 else second).token("raced", "guess").status_code,
                    range(16),
                )
            )
        assert answers.count(401) == PER_USER, answers
        assert answers.count(429) == 16 - PER_USER, answers


async def _throttle(db_env: dict[str, str], rules: Rules) -> tuple[LoginThrottle, Database]:
    settings = load_settings({**db_env, "OGDC_JWT_SECRET_KEY": JWT_KEY, "OGDC_ADMIN_PASSWORD": "x"})
    database = await open_database(settings, pool_size=2)
    await migrate(database.engine)
    return LoginThrottle(database.engine, rules), database


async def test_the_window_slides_and_a_success_forgets_that_address(
    db_env: dict[str, str],
) -> None:
    throttle, database = await _throttle(db_env, Rules(per_user=2, per_address=3, window=1.0))
    try:
        first = await throttle.admit("a", "10.0.0.1")
        second = await throttle.admit("a", "10.0.0.1")
        assert first.attempt is not None and second.attempt is not None
        refused = await throttle.admit("a", "10.0.0.1")
        assert refused.attempt is None and 0 < refused.wait <= 1.0
        assert (await throttle.admit("a", "10.0.0.2")).attempt is not None  # had not failed
        assert (await throttle.admit("a", "10.0.0.2")).attempt is None  # now it has
        assert (await throttle.admit("b", "10.0.0.2")).attempt is not None
        assert (await throttle.admit("c", "10.0.0.2")).attempt is not None
        assert (await throttle.admit("d", "10.0.0.2")).attempt is None  # the address's limit
        await throttle.forgive("a", "10.0.0.1", second.attempt)
        assert (await throttle.admit("a", "10.0.0.1")).attempt is not None

        async def window_passed() -> bool:
            return (await throttle.admit("d", "10.0.0.2")).attempt is not None

        deadline = asyncio.get_running_loop().time() + 10
        while not await window_passed():
            assert asyncio.get_running_loop().time() < deadline, "the window never slid"
            await asyncio.sleep(0.2)
    finally:
        await database.close()


async def test_a_name_with_a_nul_is_counted_not_an_error(db_env: dict[str, str]) -> None:
    throttle, database = await _throttle(db_env, Rules(per_user=1, per_address=5, window=60.0))
    try:
        assert (await throttle.admit("a\x00b", "10.0.0.1")).attempt is not None
        assert (await throttle.admit("a\x00b", "10.0.0.1")).attempt is None
    finally:
        await database.close()


async def test_turns_admit_as_many_at_once_as_the_limit_and_are_then_forgotten(
    db_env: dict[str, str],
) -> None:
    throttle, database = await _throttle(db_env, Rules(per_user=2))
    under_way: list[int] = []
    current = 0

    async def login() -> None:
        nonlocal current
        async with throttle.turn("a"):
            current += 1
            under_way.append(current)
            await asyncio.sleep(0.01)
            current -= 1

    try:
        await asyncio.gather(*(login() for _ in range(5)))
    finally:
        await database.close()
    assert len(under_way) == 5
    assert max(under_way) == 2
    assert throttle._turns == {}
