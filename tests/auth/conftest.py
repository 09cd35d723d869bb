"""Fixtures for the auth tests: roles with exactly the grants a test names, logins."""

from __future__ import annotations

import itertools

import pytest

from tests.factories import ApiClient

_names = itertools.count(1)
PASSWORD = "correct-Horse-battery-9"


@pytest.fixture
def create_role(db_session):
    """create_role([("actions:view", "acme"), ("rules:view", None)]) -> role name (committed)."""
    from app.services.rbac import create_role as service_create

    def create(grants, name: str | None = None) -> str:
        role = service_create(name or f"role{next(_names)}", "",
                              [{"permission": p, "pack": pack} for p, pack in grants])
        db_session.commit()
        return role.name

    return create


@pytest.fixture
def identity_with(create_identity, create_role):
    """identity_with([("actions:view", None)], password=...) -> Identity holding exactly those grants."""

    def create(grants, **fields):
        roles = [create_role(grants)] if grants else []
        return create_identity(roles=roles, **fields)

    return create


@pytest.fixture
def client_with(app, identity_with, token_for):
    """client_with([("actions:view", "acme")]) -> ApiClient whose caller has exactly those grants."""

    def make(grants) -> ApiClient:
        return ApiClient(app.test_client(), token_for(identity_with(grants)))

    return make


@pytest.fixture
def login(anonymous):
    """login("alice", password) -> the login response."""

    def do(username: str, password: str = PASSWORD):
        return anonymous.post("/api/v1/auth/login", json={"username": username, "password": password})

    return do


@pytest.fixture(scope="session")
def proxied_app(app):
    """The app as deployed behind one trusted proxy (PROXY_HOPS=1), as on Heroku."""
    from app import create_app

    return create_app({"TESTING": True, "PROXY_HOPS": 1})


@pytest.fixture
def behind_one_proxy(proxied_app, db_session):
    """behind_one_proxy(headers=None) -> ApiClient on the app that trusts one proxy hop."""

    def make(headers: dict[str, str] | None = None) -> ApiClient:
        return ApiClient(proxied_app.test_client(), headers)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
