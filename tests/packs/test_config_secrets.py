"""Pack config secrets live in Vault, at any depth; PostgreSQL and every answer hold
``********``; the worker, rules and webhooks get the real values through one service."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.models import Pack

URL = "/api/v1/packs"
SCHEMA = {
    "region": {"type": "string"},
    "token": {"type": "string", "secret": True},
    "db": {"type": "object", "properties": {"host": {"type": "string"},
                                            "password": {"type": "string", "secret": True}}},
}


def pack_name() -> str:
    return f"cfg{uuid.uuid4().hex[:8]}"


@pytest.fixture
def in_app(app):
    """Call ``fn(*args)`` inside an application context (services read Vault through it)."""
    def call(fn, *args):
        with app.test_request_context():
            return fn(*args)
    return call


def test_nested_secrets_go_to_vault_and_come_back_at_run_time(api, db_session, in_app):
    from app.services import pack_config, vault

    name = pack_name()
    config = {"region": "eu", "token": "t0k", "db": {"host": "h", "password": "pw"}}
    created = api.post(URL, json={"name": name, "config_schema": SCHEMA, "config": config})

    assert created.status_code == 201, created.json
    masked = {"region": "eu", "token": "********", "db": {"host": "h", "password": "********"}}
    assert created.json["config"] == masked
    assert api.get(f"{URL}/{name}").json["config"] == masked
    pack = db_session.scalar(select(Pack).where(Pack.name == name))
    assert pack.config == masked
    assert in_app(vault.read_secret, f"packs/{name}/config") == {"/token": "t0k", "/db/password": "pw"}
    full, secrets = in_app(pack_config.runtime, pack)
    assert full == config
    assert sorted(secrets.values()) == ["pw", "t0k"]


def test_a_secret_stays_secret_when_a_later_schema_drops_the_flag(api, db_session, in_app):
    from app.services import pack_config

    name = pack_name()
    api.post(URL, json={"name": name, "config_schema": SCHEMA, "config": {"token": "t0k"}})
    plain_schema = {**SCHEMA, "token": {"type": "string"}}

    changed = api.patch(f"{URL}/{name}", json={"config_schema": plain_schema, "config": {"token": "********"}})

    assert changed.status_code == 200, changed.json
    assert changed.json["config"]["token"] == "********"
    pack = db_session.scalar(select(Pack).where(Pack.name == name))
    assert "t0k" not in str(pack.config)
    assert in_app(pack_config.runtime, pack)[0]["token"] == "t0k"
    # Given anew in clear, under a schema that no longer calls it secret, it is plain.
    api.patch(f"{URL}/{name}", json={"config": {"token": "public"}})
    db_session.expire_all()
    assert db_session.scalar(select(Pack).where(Pack.name == name)).config == {"token": "public"}


def test_a_refused_change_leaves_vault_as_it_was(api, in_app):
    from app.services import vault

    name = pack_name()
    api.post(URL, json={"name": name, "config_schema": SCHEMA, "config": {"token": "first", "region": "eu"}})

    refused = api.patch(f"{URL}/{name}", json={"config": {"token": "second", "region": 7}})

    assert refused.status_code == 422
    assert in_app(vault.read_secret, f"packs/{name}/config") == {"/token": "first"}


def test_deleting_the_pack_deletes_its_secrets(api, in_app):
    from app.services import vault

    name = pack_name()
    api.post(URL, json={"name": name, "config_schema": SCHEMA, "config": {"token": "gone"}})

    assert api.delete(f"{URL}/{name}").status_code == 204

    assert in_app(vault.read_secret, f"packs/{name}/config") is None


def test_the_release_step_moves_secrets_written_in_clear_to_vault(app, api, db_session, in_app):
    from app.services import vault
    from app.services.release import move_config_secrets_to_vault

    name = pack_name()
    api.post(URL, json={"name": name, "config_schema": SCHEMA})
    pack = db_session.scalar(select(Pack).where(Pack.name == name))
    pack.config = {"region": "eu", "token": "legacy"}  # as rows were before secrets moved
    db_session.commit()

    assert name in in_app(move_config_secrets_to_vault)

    db_session.expire_all()
    assert db_session.scalar(select(Pack).where(Pack.name == name)).config == {"region": "eu", "token": "********"}
    assert in_app(vault.read_secret, f"packs/{name}/config") == {"/token": "legacy"}
    assert name not in in_app(move_config_secrets_to_vault)  # once


def test_the_config_endpoint_reads_masked_and_replaces_with_validation(api, in_app):
    from app.services import vault

    name = pack_name()
    api.post(URL, json={"name": name, "config_schema": SCHEMA})

    put = api.put(f"{URL}/{name}/config", json={"config": {"region": "eu", "token": "t1"}})
    wrong = api.put(f"{URL}/{name}/config", json={"config": {"region": 5}})
    unknown = api.put(f"{URL}/{name}/config", json={"config": {}, "extra": 1})

    masked = {"pack": name, "config": {"region": "eu", "token": "********"}}
    assert put.status_code == 200 and put.json == masked
    assert api.get(f"{URL}/{name}/config").json == masked
    assert wrong.status_code == 422 and "config" in wrong.json["errors"]
    assert unknown.status_code == 422
    assert in_app(vault.read_secret, f"packs/{name}/config") == {"/token": "t1"}
    assert api.get(f"{URL}/nope{name}/config").status_code == 404
