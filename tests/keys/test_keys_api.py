"""The key-value store API: scopes, secrets in Vault only, decrypt rules and audit, TTL, failures."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from app.db import db
from app.models import AuditEntry, Key
from tests.factories import pagination

KEYS = "/api/v1/keys"


def row_of(name: str) -> Key | None:
    return db.session.scalar(select(Key).where(Key.name == name))


def test_system_key_crud(api, key_name):
    name = key_name()
    created = api.post(KEYS, json={"name": name, "value": "v1", "description": "first"})
    assert created.status_code == 201, created.json
    expected = {"name": name, "scope": "system", "user": None, "secret": False,
                "encrypted": False, "value": "v1", "description": "first", "expires_at": None}
    assert {field: created.json[field] for field in expected} == expected
    assert api.post(KEYS, json={"name": name, "value": "again"}).status_code == 409
    assert api.get(f"{KEYS}/{name}").json["value"] == "v1"

    replaced = api.put(f"{KEYS}/{name}", json={"value": "v2"})
    assert replaced.status_code == 200 and replaced.json["value"] == "v2" and replaced.json["description"] == ""
    fresh = key_name()
    assert api.put(f"{KEYS}/{fresh}", json={"value": "new"}).status_code == 201

    listed = api.get(KEYS, query_string={"prefix": name})
    assert [k["name"] for k in listed.json] == [name] and pagination(listed)["total"] == 1

    assert api.delete(f"{KEYS}/{name}").status_code == 204
    assert api.get(f"{KEYS}/{name}").status_code == 404
    assert api.delete(f"{KEYS}/{name}").status_code == 404


def test_list_is_sorted_by_name_and_prefix_escapes_wildcards(api, key_name):
    stem = key_name("p")
    for suffix in ("b", "a", "_x", "%y"):
        assert api.post(KEYS, json={"name": f"{stem}{suffix.replace('%', '-')}", "value": "1"}).status_code == 201
    names = [k["name"] for k in api.get(KEYS, query_string={"prefix": stem}).json]
    assert names == sorted(names) and len(names) == 4
    # '_' is a literal, not "any character".
    assert [k["name"] for k in api.get(KEYS, query_string={"prefix": f"{stem}_"}).json] == [f"{stem}_x"]
    assert api.get(KEYS, query_string={"prefix": f"{stem[:-1]}%"}).json == []


def test_secret_value_lives_in_vault_only_and_needs_decrypt(api, key_name, in_vault):
    name = key_name("secret")
    created = api.post(KEYS, json={"name": name, "value": "hunter2", "secret": True})
    assert created.status_code == 201
    assert created.json["value"] is None and created.json["encrypted"] is True
    row = row_of(name)
    assert row.value is None and row.vault_path == f"keys/system/{name}"
    assert in_vault(f"keys/system/{name}") == {"value": "hunter2"}

    assert api.get(f"{KEYS}/{name}").json["value"] is None
    assert all(k["value"] is None for k in api.get(KEYS, query_string={"prefix": name}).json)
    decrypted = api.get(f"{KEYS}/{name}", query_string={"decrypt": "true"})
    assert decrypted.status_code == 200
    assert decrypted.json["value"] == "hunter2" and decrypted.json["encrypted"] is False


def test_decrypt_needs_keys_decrypt_and_the_operator_role_lacks_it(api, client_with, client_as, key_name):
    name = key_name("secret")
    api.post(KEYS, json={"name": name, "value": "hunter2", "secret": True})
    viewer = client_with([("keys:view", None)])
    assert viewer.get(f"{KEYS}/{name}").json["value"] is None
    denied = viewer.get(f"{KEYS}/{name}", query_string={"decrypt": "true"})
    assert denied.status_code == 403 and denied.json["errors"]["permission"] == "keys:decrypt"
    assert "hunter2" not in denied.get_data(as_text=True)
    operator = client_as("operator")
    assert operator.get(f"{KEYS}/{name}", query_string={"decrypt": "true"}).status_code == 403
    decrypter = client_with([("keys:view", None), ("keys:decrypt", None)])
    assert decrypter.get(f"{KEYS}/{name}", query_string={"decrypt": "true"}).json["value"] == "hunter2"


def test_decrypt_is_audited_without_the_value(api, key_name):
    name = key_name("audited")
    api.post(KEYS, json={"name": name, "value": "s3cr3t-value", "secret": True})
    api.get(f"{KEYS}/{name}", query_string={"decrypt": "true"}, headers={"X-Request-ID": f"req-{name}"})
    with db.engine.connect() as connection:
        entries = connection.execute(select(AuditEntry.__table__)
                                     .where(AuditEntry.request_id == f"req-{name}")).all()
        every = connection.execute(select(AuditEntry.__table__)).all()
    (entry,) = entries
    assert (entry.actor, entry.action, entry.resource_type, entry.resource_ref) == ("admin", "keys:decrypt", "keys", name)
    assert not any("s3cr3t-value" in json.dumps(row._asdict(), default=str) for row in every)


def test_user_keys_are_private_to_their_owner(api, client_with, key_name):
    grants = [("keys:view", None), ("keys:create", None), ("keys:update", None), ("keys:delete", None)]
    alice = client_with(grants)
    bob = client_with(grants)
    name = key_name("mine")
    created = alice.post(KEYS, json={"name": name, "value": "private", "scope": "user", "secret": True})
    assert created.status_code == 201 and created.json["user"] is not None
    owner = created.json["user"]
    assert row_of(name).vault_path == f"keys/user/{owner}/{name}"

    # The owner decrypts without keys:decrypt; everyone else sees nothing.
    assert alice.get(f"{KEYS}/{name}", query_string={"scope": "user", "decrypt": "true"}).json["value"] == "private"
    assert [k["name"] for k in alice.get(KEYS, query_string={"prefix": name}).json] == [name]
    assert bob.get(f"{KEYS}/{name}", query_string={"scope": "user"}).status_code == 404
    assert bob.get(f"{KEYS}/{name}").status_code == 404  # not a system key either
    assert bob.get(KEYS, query_string={"prefix": name}).json == []
    assert bob.delete(f"{KEYS}/{name}", query_string={"scope": "user"}).status_code == 404
    assert bob.get(KEYS, query_string={"user": owner}).status_code == 403

    # Bob's key of the same name is his own.
    assert bob.put(f"{KEYS}/{name}", query_string={"scope": "user"}, json={"value": "bob's"}).status_code == 201
    assert alice.get(f"{KEYS}/{name}", query_string={"scope": "user", "decrypt": "true"}).json["value"] == "private"

    # An admin names the owner.
    as_admin = api.get(f"{KEYS}/{name}", query_string={"scope": "user", "user": owner, "decrypt": "true"})
    assert as_admin.status_code == 200 and as_admin.json["value"] == "private"
    assert [k["name"] for k in api.get(KEYS, query_string={"user": owner, "scope": "user"}).json] == [name]
    assert alice.delete(f"{KEYS}/{name}", query_string={"scope": "user"}).status_code == 204


def test_put_that_creates_needs_keys_create(client_with, api, key_name):
    name = key_name()
    updater = client_with([("keys:view", None), ("keys:update", None)])
    denied = updater.put(f"{KEYS}/{name}", json={"value": "x"})
    assert denied.status_code == 403 and denied.json["errors"]["permission"] == "keys:create"
    api.post(KEYS, json={"name": name, "value": "x"})
    assert updater.put(f"{KEYS}/{name}", json={"value": "y"}).status_code == 200
    assert client_with([("keys:view", None)]).put(f"{KEYS}/{name}", json={"value": "z"}).status_code == 403


def test_secret_becoming_plain_or_deleted_leaves_vault(api, key_name, in_vault):
    name = key_name("turn")
    path = f"keys/system/{name}"
    api.post(KEYS, json={"name": name, "value": "hidden", "secret": True})
    assert api.put(f"{KEYS}/{name}", json={"value": "plain"}).json["value"] == "plain"
    assert in_vault(path) is None and row_of(name).value == "plain"
    api.put(f"{KEYS}/{name}", json={"value": "hidden2", "secret": True})
    assert in_vault(path) == {"value": "hidden2"} and row_of(name).value is None
    assert api.delete(f"{KEYS}/{name}").status_code == 204
    assert in_vault(path) is None


def test_a_refused_duplicate_leaves_the_first_secret_alone(api, key_name, in_vault):
    name = key_name("dup")
    api.post(KEYS, json={"name": name, "value": "first", "secret": True})
    assert api.post(KEYS, json={"name": name, "value": "second", "secret": True}).status_code == 409
    assert in_vault(f"keys/system/{name}") == {"value": "first"}


def test_a_rolled_back_write_leaves_no_secret(app, db_session, key_name, in_vault):
    from app.services import keys

    name = key_name("rollback")
    with app.test_request_context():
        keys.create_key(keys.Target("system", None), name, {"value": "gone", "secret": True})
        assert in_vault(f"keys/system/{name}") == {"value": "gone"}
        db_session.rollback()
    assert in_vault(f"keys/system/{name}") is None
    assert row_of(name) is None


def test_ttl_expiry_and_purge(app, api, key_name, in_vault):
    from tasks.maintenance import purge_expired_keys

    name = key_name("ttl")
    created = api.post(KEYS, json={"name": name, "value": "brief", "secret": True, "ttl": 1})
    assert created.status_code == 201 and created.json["expires_at"] is not None
    assert api.get(f"{KEYS}/{name}").status_code == 200
    time.sleep(1.5)
    assert api.get(f"{KEYS}/{name}").status_code == 404
    assert api.get(KEYS, query_string={"prefix": name}).json == []
    assert row_of(name) is not None  # gone from reads before the purge runs
    # An expired key's name is free again for POST.
    other = key_name("ttl")
    api.post(KEYS, json={"name": other, "value": "x", "ttl": 1})
    time.sleep(1.1)
    assert api.post(KEYS, json={"name": other, "value": "again"}).status_code == 201

    with app.app_context():
        assert purge_expired_keys.run()["deleted"] >= 1
    assert row_of(name) is None
    assert in_vault(f"keys/system/{name}") is None
    assert api.get(f"{KEYS}/{other}").json["value"] == "again"


def test_vault_down_is_a_503_for_secrets_only(api, key_name, vault_down):
    name = key_name("down")
    refused = api.post(KEYS, json={"name": name, "value": "s", "secret": True})
    assert refused.status_code == 503 and refused.json["errors"]["service"] == "vault"
    assert row_of(name) is None
    plain = key_name("plain")
    assert api.post(KEYS, json={"name": plain, "value": "p"}).status_code == 201
    assert api.put(f"{KEYS}/{plain}", json={"value": "q"}).status_code == 200
    assert api.get(f"{KEYS}/{plain}").json["value"] == "q"
    assert api.get(KEYS, query_string={"prefix": plain}).status_code == 200
    assert api.delete(f"{KEYS}/{plain}").status_code == 204


def test_vault_down_decrypt_and_delete_of_a_secret(app, api, key_name):
    from app.services import vault

    name = key_name("down")
    api.post(KEYS, json={"name": name, "value": "s", "secret": True})
    saved = app.config["VAULT_ADDR"]
    app.config["VAULT_ADDR"] = "http://127.0.0.1:9"
    vault._clients.clear()
    try:
        assert api.get(f"{KEYS}/{name}").json["value"] is None  # no decrypt: no Vault needed
        assert api.get(f"{KEYS}/{name}", query_string={"decrypt": "true"}).status_code == 503
        assert api.delete(f"{KEYS}/{name}").status_code == 503
    finally:
        app.config["VAULT_ADDR"] = saved
        vault._clients.clear()
    assert api.get(f"{KEYS}/{name}", query_string={"decrypt": "true"}).json["value"] == "s"


def test_hostile_names_and_values_are_refused(api):
    for name in ("../x", "a//b", "/lead", "", ".hidden", "x" * 256, "a\x00b", "a b", "a\n"):
        response = api.post(KEYS, json={"name": name, "value": "v"})
        assert response.status_code == 422, (name, response.json)
    for name in ("..", ".x", "x" * 256, "a%00b"):
        assert api.put(f"{KEYS}/{name}", json={"value": "v"}).status_code in (404, 422), name
    assert api.put(f"{KEYS}/{'x' * 256}", json={"value": "v"}).status_code == 422
    assert api.post(KEYS, json={"name": "ok", "value": {"not": "a string"}}).status_code == 422
    assert api.post(KEYS, json={"name": "ok", "value": 5}).status_code == 422
    assert api.post(KEYS, json={"name": "ok", "value": "x" * (64 * 1024 + 1)}).status_code == 422
    assert api.post(KEYS, json={"name": "ok", "value": "v", "ttl": 0}).status_code == 422
    assert api.post(KEYS, json={"name": "ok", "value": "v", "scope": "pack"}).status_code == 422
    assert api.post(KEYS, json={"name": "ok", "value": "v", "user": "admin"}).status_code == 422
    assert api.get(KEYS, query_string={"prefix": "a\x00"}).status_code == 422


def test_the_worker_helpers(app, api, key_name):
    from app.services import keys

    secret, plain = key_name("s"), key_name("p")
    api.post(KEYS, json={"name": secret, "value": "sv", "secret": True})
    api.post(KEYS, json={"name": plain, "value": "pv"})
    with app.app_context():
        assert keys.key_value(keys.find_key(secret, "system", None)) == "sv"
        assert keys.key_value(keys.find_key(plain, "system", None)) == "pv"
        assert keys.find_key(plain, "user", "admin") is None
        assert keys.find_key("../x", "system", None) is None


def test_the_key_purge_removes_run_tokens_that_can_no_longer_be_used(app, committed_db):
    from datetime import timedelta

    from app.db import utcnow
    from app.models import RunToken
    from tasks.maintenance import purge_expired_keys

    committed_db.add_all([
        RunToken(token_hash="a" * 64, sensor_ref="p.s", pack="p", expires_at=utcnow() - timedelta(seconds=1)),
        RunToken(token_hash="b" * 64, sensor_ref="p.s", pack="p", expires_at=utcnow() + timedelta(hours=1)),
    ])
    committed_db.commit()
    with app.app_context():
        assert purge_expired_keys.run()["run_tokens"] == 1
    committed_db.rollback()
    assert committed_db.scalars(select(RunToken.token_hash)).all() == ["b" * 64]
