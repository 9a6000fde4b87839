"""Fixtures for the API tests: the real service over HTTP on a database of its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.support.postgres import PostgresServer
from tests.support.service import DEFAULT_SECRETS, Service

ADMIN_PASSWORD = DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"]
JWT_KEY = DEFAULT_SECRETS["OGDC_JWT_SECRET_KEY"]


@dataclass
class Api:
    """A thin client of one running service."""

    service: Service

    @property
    def url(self) -> str:
        return self.service.url

    def token(self, username: str, password: str) -> requests.Response:
        return requests.post(
            f"{self.url}/token", data={"username": username, "password": password}, timeout=30
        )

    def login(self, username: str, password: str) -> str:
        response = self.token(username, password)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def admin_token(self) -> str:
        return self.login("admin", ADMIN_PASSWORD)

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        data: object = None,
        json: object = None,
    ) -> requests.Response:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(
            method, f"{self.url}{path}", headers=headers, data=data, json=json, timeout=30
        )

    def create_user(
        self, admin: str, username: str, password: str, github_login: str | None = None
    ) -> requests.Response:
        data = {"username": username, "password": password}
        if github_login is not None:
            data["github_login"] = github_login
        return self.call("POST", "/create_user", admin, data=data)


@pytest.fixture(scope="module")
def module_db_env(postgres: PostgresServer) -> Iterator[dict[str, str]]:
    """A database shared by the tests of one module (each module starts one service)."""
    name = postgres.create_database()
    yield {**postgres.env(name), **DEFAULT_SECRETS}
    postgres.drop_database(name)


@pytest.fixture(scope="module")
def api(module_db_env: dict[str, str]) -> Iterator[Api]:
    """One running service for a whole module; tests use their own user names."""
    with Service(module_db_env) as service:
        yield Api(service)


@pytest.fixture
def api_env(db_env: dict[str, str]) -> dict[str, str]:
    """Variables for a service of this test alone, on this test's database."""
    return {**db_env, **DEFAULT_SECRETS}
