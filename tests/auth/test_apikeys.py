"""API keys: shown once, stored hashed, narrower than their owner, revocable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.models import ApiKey
from app.security.keys import API_KEY_HASHING, JWT_SIGNING, derived_key


def key_header(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def test_create_shows_the_key_once_and_it_authenticates(client_as, anonymous, db_session):
    operator = client_as("operator")
    created = operator.post("/api/v1/apikeys", json={"name": "ci"})
    assert created.status_code == 201, created.json
    key = created.json["key"]
    assert key.startswith("pbk_") and created.json["prefix"] in key
    row = db_session.scalar(select(ApiKey).where(ApiKey.id == created.json["id"]))
    assert row.key_hash != key and key not in row.key_hash
    me = anonymous.get("/api/v1/auth/me", headers=key_header(key))
    assert me.status_code == 200 and me.json["api_key"] == created.json["prefix"]
    # Listing and reading never show the key again, nor its hash.
    for answer in (operator.get("/api/v1/apikeys"), operator.get(f"/api/v1/apikeys/{created.json['id']}")):
        assert answer.status_code == 200
        assert key not in answer.get_data(as_text=True) and row.key_hash not in answer.get_data(as_text=True)
    listed = operator.get("/api/v1/apikeys").json
    assert [k["name"] for k in listed] == ["ci"]
    assert set(listed[0]) == {"id", "name", "prefix", "owner", "permissions", "created_at", "last_used_at",
                              "expires_at", "revoked_at"}
    assert listed[0]["last_used_at"] is not None


def test_a_key_can_narrow_but_not_widen_its_owners_permissions(client_as, anonymous):
    operator = client_as("operator")
    narrow = operator.post("/api/v1/apikeys", json={"name": "reader", "permissions": ["actions:view"]})
    assert narrow.status_code == 201, narrow.json
    headers = key_header(narrow.json["key"])
    assert anonymous.get("/api/v1/actions", headers=headers).status_code == 200
    assert anonymous.get("/api/v1/rules", headers=headers).status_code == 403
    me = anonymous.get("/api/v1/auth/me", headers=headers).json
    assert [p["permission"] for p in me["permissions"]] == ["actions:view"]
    wider = operator.post("/api/v1/apikeys", json={"name": "greedy", "permissions": ["rbac:manage"]})
    assert wider.status_code == 422 and "permissions" in wider.json["errors"]
    unknown = operator.post("/api/v1/apikeys", json={"name": "typo", "permissions": ["actions:veiw"]})
    assert unknown.status_code == 422


def test_a_narrowed_key_cannot_mint_a_wider_key(client_as, anonymous):
    operator = client_as("operator")
    key = operator.post("/api/v1/apikeys", json={"name": "minter", "permissions": ["apikeys:create"]}).json["key"]
    escalate = anonymous.post("/api/v1/apikeys", headers=key_header(key),
                              json={"name": "wider", "permissions": ["actions:execute"]})
    assert escalate.status_code == 422
    # Without a permissions list the new key gets the calling key's, not the owner's.
    plain = anonymous.post("/api/v1/apikeys", headers=key_header(key), json={"name": "same"})
    assert plain.status_code == 201 and plain.json["permissions"] == ["apikeys:create"]
    assert anonymous.get("/api/v1/actions", headers=key_header(plain.json["key"])).status_code == 403


def test_revoked_expired_and_malformed_keys_are_refused(client_as, anonymous, db_session):
    operator = client_as("operator")
    created = operator.post("/api/v1/apikeys", json={"name": "temp"}).json
    assert operator.delete(f"/api/v1/apikeys/{created['id']}").status_code == 204
    assert anonymous.get("/api/v1/actions", headers=key_header(created["key"])).status_code == 401
    assert operator.get("/api/v1/apikeys").json == []
    assert [k["name"] for k in operator.get("/api/v1/apikeys?include_revoked=true").json] == ["temp"]

    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    expiring = operator.post("/api/v1/apikeys", json={"name": "expiring", "expires_at": soon}).json
    assert anonymous.get("/api/v1/actions", headers=key_header(expiring["key"])).status_code == 200
    db_session.get(ApiKey, expiring["id"]).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db_session.commit()
    assert anonymous.get("/api/v1/actions", headers=key_header(expiring["key"])).status_code == 401

    past = operator.post("/api/v1/apikeys", json={"name": "past", "expires_at": "2020-01-01T00:00:00+00:00"})
    assert past.status_code == 422 and "expires_at" in past.json["errors"]
    tampered = expiring["key"][:-2] + ("AA" if not expiring["key"].endswith("AA") else "BB")
    for bad in ("nonsense", "pbk_000000000000_x", tampered):
        assert anonymous.get("/api/v1/actions", headers=key_header(bad)).status_code == 401


def test_others_keys_are_invisible_except_to_rbac_managers(client_as, api, create_identity):
    alice, bob = client_as("operator"), client_as("operator")
    alices = alice.post("/api/v1/apikeys", json={"name": "alices"}).json
    assert bob.get("/api/v1/apikeys").json == []
    assert bob.get(f"/api/v1/apikeys/{alices['id']}").status_code == 404
    assert bob.delete(f"/api/v1/apikeys/{alices['id']}").status_code == 404
    assert [k["name"] for k in api.get("/api/v1/apikeys").json] == ["alices"]
    assert api.delete(f"/api/v1/apikeys/{alices['id']}").status_code == 204


def test_keys_for_a_service_account_need_rbac_manage(client_as, api, create_identity, anonymous):
    robot = create_identity("robot", roles=["viewer"], kind="service")
    denied = client_as("operator").post("/api/v1/apikeys", json={"name": "robot-key", "owner": "robot"})
    assert denied.status_code == 403
    created = api.post("/api/v1/apikeys", json={"name": "robot-key", "owner": robot.name})
    assert created.status_code == 201 and created.json["owner"] == "robot"
    me = anonymous.get("/api/v1/auth/me", headers=key_header(created.json["key"])).json
    assert me["identity"]["name"] == "robot" and me["roles"] == ["viewer"]
    too_much = api.post("/api/v1/apikeys", json={"name": "x", "owner": "robot", "permissions": ["rules:create"]})
    assert too_much.status_code == 422


def test_a_deleted_identitys_keys_stop_working_and_losing_a_permission_narrows_its_keys(api, anonymous,
                                                                                       create_identity, db_session):
    robot = create_identity("robot2", roles=["operator"], kind="service")
    key = api.post("/api/v1/apikeys", json={"name": "deploy", "owner": "robot2",
                                            "permissions": ["actions:view", "rules:create"]}).json["key"]
    assert anonymous.get("/api/v1/actions", headers=key_header(key)).status_code == 200
    # The key never outgrows its owner: take the role away and the key loses it too.
    assert api.delete(f"/api/v1/identities/{robot.id}/roles/operator").status_code == 204
    assert anonymous.get("/api/v1/actions", headers=key_header(key)).status_code == 403
    assert api.post(f"/api/v1/identities/{robot.id}/roles", json={"role": "viewer"}).status_code == 200
    me = anonymous.get("/api/v1/auth/me", headers=key_header(key)).json
    assert [p["permission"] for p in me["permissions"]] == ["actions:view"]
    assert api.delete(f"/api/v1/identities/{robot.id}").status_code == 204
    assert anonymous.get("/api/v1/actions", headers=key_header(key)).status_code == 401
    assert db_session.scalar(select(ApiKey).where(ApiKey.name == "deploy")) is None


def test_keys_are_hashed_with_their_own_derived_key(client_as, db_session, app):
    from app.security.authenticate import hash_api_key, legacy_api_key_hash

    created = client_as("operator").post("/api/v1/apikeys", json={"name": "derived"})
    row = db_session.scalar(select(ApiKey).where(ApiKey.id == created.json["id"]))
    with app.app_context():
        assert row.key_hash == hash_api_key(created.json["key"])
        assert row.key_hash != legacy_api_key_hash(created.json["key"])
    secret_key = app.config["SECRET_KEY"]
    # One key per purpose, neither of them SECRET_KEY.
    assert len({derived_key(secret_key, API_KEY_HASHING), derived_key(secret_key, JWT_SIGNING), secret_key}) == 3


def test_a_key_stored_with_the_old_hash_works_and_is_rehashed_in_place(client_as, anonymous, db_session, app):
    from app.security.authenticate import hash_api_key, legacy_api_key_hash

    created = client_as("operator").post("/api/v1/apikeys", json={"name": "from-before"})
    key, key_id = created.json["key"], created.json["id"]
    with app.app_context():
        old_hash, new_hash = legacy_api_key_hash(key), hash_api_key(key)
    # As a key issued before the derived key was stored: HMAC keyed by SECRET_KEY itself.
    db_session.execute(ApiKey.__table__.update().where(ApiKey.id == key_id).values(key_hash=old_hash))
    db_session.commit()

    def stored_hash() -> str:
        db_session.expire_all()
        return db_session.scalar(select(ApiKey.key_hash).where(ApiKey.id == key_id))

    first = anonymous.get("/api/v1/auth/me", headers=key_header(key))
    assert first.status_code == 200 and first.json["api_key"] == created.json["prefix"]
    assert stored_hash() == new_hash
    again = anonymous.get("/api/v1/auth/me", headers=key_header(key))
    assert again.status_code == 200 and again.json["api_key"] == created.json["prefix"]
    assert stored_hash() == new_hash
    # A wrong key with the right prefix matches neither hash and changes nothing.
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert anonymous.get("/api/v1/auth/me", headers=key_header(wrong)).status_code == 401
    assert stored_hash() == new_hash
