"""Authentication is cached per process, and every change that must take effect at once does.

Each test first makes a call that puts the caller in the cache, changes something (through
the API, as an admin would, or straight in the database), and the very next call sees it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, update

from app.models import Identity
from tests.auth.conftest import PASSWORD
from tests.factories import ApiClient

AUTH_TABLES = ("identities", "roles", "role_assignments", "permission_grants", "api_keys")


@pytest.fixture
def caller(app, create_identity, create_role, token_for):
    """caller(grants) -> (identity, its role's name, ApiClient with its bearer token), cached."""

    def make(grants, expect: int = 200):
        role = create_role(grants)
        identity = create_identity(roles=[role], password=PASSWORD)
        client = ApiClient(app.test_client(), token_for(identity))
        assert client.get("/api/v1/actions").status_code == expect
        return identity, role, client

    return make


@pytest.fixture
def api_key_of(api, anonymous):
    """api_key_of(identity) -> ApiClient sending a new key of ``identity``, already in the cache."""

    def make(identity, expect: int = 200):
        created = api.post("/api/v1/apikeys", json={"name": "cached", "owner": identity.name})
        assert created.status_code == 201, created.json
        client = anonymous.as_headers({"X-API-Key": created.json["key"]})
        assert client.get("/api/v1/actions").status_code == expect
        return client, created.json["id"]

    return make


@contextmanager
def statements(app):
    """The SQL statements the app sends while the block runs."""
    from app.db import db

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def touching_auth_tables(seen: list[str]) -> list[str]:
    pattern = re.compile(r"\b(" + "|".join(AUTH_TABLES) + r")\b")
    return [s for s in seen if pattern.search(s)]


def test_a_cached_caller_costs_no_query_on_identities_or_grants(app, caller, api_key_of):
    identity, _, client = caller([("actions:view", None)])
    key_client, _ = api_key_of(identity)
    for who in (client, key_client):
        with statements(app) as seen:
            assert who.get("/api/v1/actions").status_code == 200
        assert seen, "the view itself still reads its actions"
        assert touching_auth_tables(seen) == []


def test_disabling_an_identity_shuts_its_token_and_keys_out_at_once(api, caller, api_key_of):
    identity, _, client = caller([("actions:view", None)])
    key_client, _ = api_key_of(identity)
    assert api.post(f"/api/v1/identities/{identity.id}/disable").status_code == 200
    assert client.get("/api/v1/actions").status_code == 401
    assert key_client.get("/api/v1/actions").status_code == 401
    assert api.post(f"/api/v1/identities/{identity.id}/enable").status_code == 200
    # Enabling does not bring back tokens issued before the disable; keys work again.
    assert client.get("/api/v1/actions").status_code == 401
    assert key_client.get("/api/v1/actions").status_code == 200


def test_deleting_an_identity_shuts_it_out_at_once(api, caller, api_key_of):
    identity, _, client = caller([("actions:view", None)])
    key_client, _ = api_key_of(identity)
    assert api.delete(f"/api/v1/identities/{identity.id}").status_code == 204
    assert client.get("/api/v1/actions").status_code == 401
    assert key_client.get("/api/v1/actions").status_code == 401


def test_a_revoked_api_key_is_refused_at_once(api, caller, api_key_of):
    identity, _, _ = caller([("actions:view", None)])
    key_client, key_id = api_key_of(identity)
    other_key, _ = api_key_of(identity)
    assert api.delete(f"/api/v1/apikeys/{key_id}").status_code == 204
    assert key_client.get("/api/v1/actions").status_code == 401
    assert other_key.get("/api/v1/actions").status_code == 200


def test_removing_a_grant_from_a_role_refuses_at_once(api, caller, api_key_of):
    identity, role, client = caller([("actions:view", None)])
    key_client, _ = api_key_of(identity)
    assert api.delete(f"/api/v1/roles/{role}/permissions?permission=actions:view").status_code == 204
    assert client.get("/api/v1/actions").status_code == 403
    assert key_client.get("/api/v1/actions").status_code == 403


def test_adding_a_grant_to_a_role_allows_at_once(api, caller):
    _, role, client = caller([("rules:view", None)], expect=403)
    assert api.post(f"/api/v1/roles/{role}/permissions", json={"permission": "actions:view"}).status_code == 201
    assert client.get("/api/v1/actions").status_code == 200


def test_assigning_and_taking_a_role_take_effect_at_once(api, caller, create_role):
    viewer_role = create_role([("actions:view", None)])  # before the caller is cached
    identity, _, client = caller([("rules:view", None)], expect=403)
    assert api.post(f"/api/v1/identities/{identity.id}/roles", json={"role": viewer_role}).status_code == 200
    assert client.get("/api/v1/actions").status_code == 200
    assert api.delete(f"/api/v1/identities/{identity.id}/roles/{viewer_role}").status_code == 204
    assert client.get("/api/v1/actions").status_code == 403
    # Deleting a role takes its grants from everyone holding it.
    assert api.post(f"/api/v1/identities/{identity.id}/roles", json={"role": viewer_role}).status_code == 200
    assert client.get("/api/v1/actions").status_code == 200
    assert api.delete(f"/api/v1/roles/{viewer_role}").status_code == 204
    assert client.get("/api/v1/actions").status_code == 403


def test_a_password_change_ends_cached_sessions_at_once(api, caller):
    identity, _, client = caller([("actions:view", None)])
    assert api.patch(f"/api/v1/identities/{identity.id}", json={"password": PASSWORD + "-new"}).status_code == 200
    assert client.get("/api/v1/actions").status_code == 401


def test_logging_out_everywhere_ends_cached_sessions_at_once(caller):
    _, _, client = caller([("actions:view", None)])
    assert client.post("/api/v1/auth/logout", json={"everywhere": True}).status_code == 204
    assert client.get("/api/v1/actions").status_code == 401


def test_a_change_written_straight_to_the_database_is_seen_at_once(caller, db_session):
    # Not through the API: any flush of these rows changes the stamps when it commits.
    identity, _, client = caller([("actions:view", None)])
    db_session.get(Identity, identity.id).enabled = False
    db_session.commit()
    assert client.get("/api/v1/actions").status_code == 401


def test_lost_stamps_mean_a_reload_not_a_stale_answer(app, caller, db_session):
    from app.extensions import redis_client
    from app.security.auth_cache import GLOBAL_STAMP, IDENTITY_STAMP

    identity, _, client = caller([("actions:view", None)])
    # A change no flush tracked (bulk SQL), then Redis loses its stamps (a restart without
    # persistence): the entry cannot be checked, so it is loaded again.
    db_session.execute(update(Identity).where(Identity.id == identity.id).values(enabled=False)
                       .execution_options(synchronize_session=False))
    db_session.commit()
    with app.app_context():
        redis_client().delete(GLOBAL_STAMP, f"{IDENTITY_STAMP}{identity.id}")
    assert client.get("/api/v1/actions").status_code == 401


def test_without_redis_api_keys_are_checked_in_the_database(app, caller, api_key_of, db_session):
    from app.devservices import free_port

    identity, _, _ = caller([("actions:view", None)])
    key_client, key_id = api_key_of(identity)
    previous = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    try:
        # The key is cached and its stamps unchanged, but they cannot be read: the database answers.
        assert key_client.get("/api/v1/actions").status_code == 200
        db_session.execute(update(Identity).where(Identity.id == identity.id).values(enabled=False)
                           .execution_options(synchronize_session=False))
        db_session.commit()
        assert key_client.get("/api/v1/actions").status_code == 401
    finally:
        app.config["REDIS_URL"] = previous
