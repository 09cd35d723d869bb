"""How credentials are stored and how long tokens live (both set by the issue, both checked)."""

from __future__ import annotations

from datetime import timedelta

from flask_jwt_extended import decode_token

from app.config import load_settings
from app.models import Identity
from app.security.tokens import lifetimes
from tests.auth.conftest import PASSWORD, bearer


def test_passwords_are_stored_as_argon2id_and_never_in_clear(api, db_session, login):
    created = api.post("/api/v1/identities", json={"name": "uma", "password": PASSWORD})
    assert created.status_code == 201, created.json
    stored = db_session.get(Identity, created.json["id"]).password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert "password" not in created.json and "password_hash" not in created.json
    assert login("uma").status_code == 200


def test_token_lifetimes_come_from_the_configuration(app, create_identity, login, anonymous):
    env = {"DATABASE_URL": "postgresql://x@localhost/x", "REDIS_URL": "redis://localhost:6379/0",
           "VAULT_ADDR": "http://localhost:8200", "VAULT_TOKEN": "t", "SECRET_KEY": "0123456789abcdef" * 2,
           "JWT_ACCESS_TOKEN_MINUTES": "5", "JWT_REFRESH_TOKEN_DAYS": "2"}
    configured = lifetimes(load_settings(env))
    assert configured == {"JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=5),
                          "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=2)}
    create_identity("vera", password=PASSWORD)
    saved = {name: app.config[name] for name in configured}
    app.config.update(configured)
    try:
        tokens = login("vera").json
        refreshed = anonymous.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json
    finally:
        app.config.update(saved)
    assert tokens["expires_in"] == refreshed["expires_in"] == 5 * 60
    with app.app_context():
        access, refresh = decode_token(tokens["access_token"]), decode_token(tokens["refresh_token"])
        again = decode_token(refreshed["access_token"])
    assert access["exp"] - access["iat"] == 5 * 60 and again["exp"] - again["iat"] == 5 * 60
    assert refresh["exp"] - refresh["iat"] == 2 * 24 * 3600
    assert anonymous.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 200
