"""People's sessions: login, refresh, logout, me, password change, registration."""

from __future__ import annotations

import pytest
from flask import Flask

from app.config import ConfigError
from app.models import Identity
from app.security.ratelimit import install_rate_limiter
from tests.auth.conftest import PASSWORD, bearer


def test_login_gives_tokens_that_work_and_me_shows_roles_and_permissions(create_identity, login, anonymous):
    create_identity("alice", roles=["viewer"], password=PASSWORD)
    response = login("alice")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
    me = anonymous.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json["identity"]["name"] == "alice"
    assert me.json["roles"] == ["viewer"]
    assert {"permission": "actions:view", "pack": None} in me.json["permissions"]
    assert all(not p["permission"].startswith("rbac:") for p in me.json["permissions"])
    assert "password_hash" not in me.json["identity"]


def test_wrong_password_unknown_user_and_disabled_identity_get_the_same_401(create_identity, login):
    create_identity("bob", password=PASSWORD)
    create_identity("carol", password=PASSWORD, enabled=False)
    answers = [login("bob", "not-the-password-at-all"), login("nobody", PASSWORD), login("carol")]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.json["message"] for a in answers}) == 1
    assert set(answers[0].json) == {"code", "status", "message", "errors"}


def test_login_records_last_login(create_identity, login, db_session):
    identity = create_identity("dave", password=PASSWORD)
    assert login("dave").status_code == 200
    db_session.expire_all()
    assert db_session.get(Identity, identity.id).last_login_at is not None


def test_refresh_gives_a_new_access_token(create_identity, login, anonymous):
    create_identity("erin", password=PASSWORD)
    tokens = login("erin").json
    refreshed = anonymous.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.json
    assert "refresh_token" not in refreshed.json
    assert anonymous.get("/api/v1/auth/me", headers=bearer(refreshed.json["access_token"])).status_code == 200


def test_an_access_token_is_no_refresh_token_and_vice_versa(create_identity, login, anonymous):
    create_identity("frank", password=PASSWORD)
    tokens = login("frank").json
    as_refresh = anonymous.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert as_refresh.status_code == 401
    as_access = anonymous.get("/api/v1/auth/me", headers=bearer(tokens["refresh_token"]))
    assert as_access.status_code == 401


def test_logout_revokes_the_access_token_and_the_given_refresh_token(create_identity, login, anonymous):
    create_identity("gina", password=PASSWORD)
    tokens = login("gina").json
    other_session = login("gina").json
    out = anonymous.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]),
                         json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204, out.json
    assert anonymous.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
    again = anonymous.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401
    assert again.json["message"] == "The token has been revoked."
    # Another session of the same person is untouched.
    assert anonymous.get("/api/v1/auth/me", headers=bearer(other_session["access_token"])).status_code == 200


def test_logout_with_only_the_access_token_ends_the_whole_session(create_identity, login, anonymous):
    """A client that logs out without sending its refresh token must not keep a live one."""
    create_identity("gwen", password=PASSWORD)
    tokens = login("gwen").json
    other_session = login("gwen").json
    refreshed = anonymous.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json
    out = anonymous.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]), json={})
    assert out.status_code == 204
    again = anonymous.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401 and again.json["message"] == "The token has been revoked."
    # An access token refreshed from that session before the logout ends with it.
    assert anonymous.get("/api/v1/auth/me", headers=bearer(refreshed["access_token"])).status_code == 401
    assert anonymous.get("/api/v1/auth/me", headers=bearer(other_session["access_token"])).status_code == 200
    assert anonymous.post("/api/v1/auth/refresh", json={"refresh_token": other_session["refresh_token"]}).status_code == 200


def test_the_blocklist_lives_in_redis_for_every_web_process(create_identity, login, anonymous, app):
    """Revocation is a Redis key by jti (so every web process sees it), expiring with the token."""
    from flask_jwt_extended import decode_token

    from app.extensions import redis_client
    from app.security.tokens import BLOCKLIST_PREFIX

    create_identity("hank", password=PASSWORD)
    tokens = login("hank").json
    with app.app_context():
        jti = decode_token(tokens["access_token"])["jti"]
        assert not redis_client().exists(BLOCKLIST_PREFIX + jti)
    assert anonymous.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]), json={}).status_code == 204
    with app.app_context():
        ttl = redis_client().ttl(BLOCKLIST_PREFIX + jti)
    assert 0 < ttl <= 15 * 60 + 60


def test_logout_refuses_someone_elses_refresh_token(create_identity, login, anonymous):
    create_identity("ivan", password=PASSWORD)
    create_identity("judy", password=PASSWORD)
    ivan, judy = login("ivan").json, login("judy").json
    out = anonymous.post("/api/v1/auth/logout", headers=bearer(ivan["access_token"]),
                         json={"refresh_token": judy["refresh_token"]})
    assert out.status_code == 422
    assert "refresh_token" in out.json["errors"]
    assert anonymous.post("/api/v1/auth/refresh", json={"refresh_token": judy["refresh_token"]}).status_code == 200


def test_password_change_kills_old_tokens_and_returns_new_ones(create_identity, login, anonymous):
    create_identity("kim", password=PASSWORD)
    old = login("kim").json
    new_password = "an0ther-Long-passphrase"
    changed = anonymous.post("/api/v1/auth/password", headers=bearer(old["access_token"]),
                             json={"old_password": PASSWORD, "new_password": new_password})
    assert changed.status_code == 200, changed.json
    assert anonymous.get("/api/v1/auth/me", headers=bearer(old["access_token"])).status_code == 401
    assert anonymous.post("/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}).status_code == 401
    assert anonymous.get("/api/v1/auth/me", headers=bearer(changed.json["access_token"])).status_code == 200
    assert login("kim").status_code == 401
    assert login("kim", new_password).status_code == 200


def test_password_change_needs_the_old_password_and_enforces_the_policy(create_identity, login, anonymous):
    create_identity("leo", password=PASSWORD)
    headers = bearer(login("leo").json["access_token"])

    def change(old: str, new: str):
        return anonymous.post("/api/v1/auth/password", headers=headers, json={"old_password": old, "new_password": new})

    wrong_old = change("not-my-password-1", "a-fine-new-passphrase")
    assert wrong_old.status_code == 422 and "old_password" in wrong_old.json["errors"]
    for weak in ("short1!", "leo-is-my-name-ok", "password1234", "aaaaaaaaaaaaaaaa"):
        answer = change(PASSWORD, weak)
        assert answer.status_code == 422, weak
        assert answer.json["errors"]["new_password"], weak
    # Nothing changed: the old password still logs in.
    assert login("leo").status_code == 200


def test_registration_is_off_unless_allowed(anonymous, app, db_session):
    body = {"username": "newbie", "password": "a-perfectly-good-passphrase"}
    assert anonymous.post("/api/v1/auth/register", json=body).status_code == 404
    app.config["ALLOW_REGISTRATION"] = True
    try:
        created = anonymous.post("/api/v1/auth/register", json=body)
        assert created.status_code == 201, created.json
        assert created.json["name"] == "newbie" and created.json["roles"] == []
        duplicate = anonymous.post("/api/v1/auth/register", json=body)
        assert duplicate.status_code == 409
        weak = anonymous.post("/api/v1/auth/register", json={"username": "weakling", "password": "password1234"})
        assert weak.status_code == 422
        tokens = anonymous.post("/api/v1/auth/login", json=body).json
        # No role: it can see itself and nothing else.
        assert anonymous.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).json["permissions"] == []
        assert anonymous.get("/api/v1/actions", headers=bearer(tokens["access_token"])).status_code == 403
    finally:
        app.config["ALLOW_REGISTRATION"] = False


def test_login_is_rate_limited_with_retry_after(create_identity, login, app):
    create_identity("mallory", password=PASSWORD)
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    answers = [login("mallory", f"guess-number-{i:04d}").status_code for i in range(limit)]
    assert answers == [401] * limit
    blocked = login("mallory")
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert set(blocked.json) == {"code", "status", "message", "errors"} and blocked.json["code"] == 429


def test_the_per_username_limit_holds_when_the_address_changes(create_identity, anonymous, app):
    create_identity("oscar", password=PASSWORD)
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    for i in range(limit):
        anonymous.client.environ_base["REMOTE_ADDR"] = f"10.0.0.{i + 1}"
        assert anonymous.post("/api/v1/auth/login", json={"username": "oscar", "password": "nope-nope-nope"}).status_code == 401
    anonymous.client.environ_base["REMOTE_ADDR"] = "10.0.1.1"
    blocked = anonymous.post("/api/v1/auth/login", json={"username": "oscar", "password": PASSWORD})
    assert blocked.status_code == 429


def test_a_forged_forwarded_for_does_not_escape_the_per_address_limit(create_identity, anonymous, app):
    create_identity("petra", password=PASSWORD)
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    # No trusted proxy (PROXY_HOPS=0): each attempt names a new address, all from one peer.
    for i in range(limit):
        assert anonymous.post("/api/v1/auth/login", json={"username": f"someone{i}", "password": "wrong-password-x"},
                              headers={"X-Forwarded-For": f"192.0.2.{i}"}).status_code == 401
    blocked = anonymous.post("/api/v1/auth/login", json={"username": "petra", "password": PASSWORD},
                             headers={"X-Forwarded-For": "198.51.100.1"})
    assert blocked.status_code == 429


def test_the_per_address_limit_counts_the_proxys_last_hop(create_identity, behind_one_proxy, app):
    create_identity("peggy", password=PASSWORD)
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    anonymous = behind_one_proxy()

    def attempt(username: str, forwarded: str, password: str = "wrong-password-x"):
        return anonymous.post("/api/v1/auth/login", json={"username": username, "password": password},
                              headers={"X-Forwarded-For": forwarded})

    # A client forging earlier hops is still counted by the hop the proxy appended.
    for i in range(limit):
        assert attempt(f"someone{i}", f"192.0.2.{i}, 203.0.113.7").status_code == 401
    assert attempt("peggy", "198.51.100.1, 203.0.113.7", PASSWORD).status_code == 429
    assert attempt("peggy", "203.0.113.8", PASSWORD).status_code == 200


def test_a_disabled_identitys_refresh_token_is_refused(create_identity, login, anonymous, api):
    victim = create_identity("quinn", password=PASSWORD)
    tokens = login("quinn").json
    assert api.post(f"/api/v1/identities/{victim.id}/disable").status_code == 200
    assert anonymous.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert api.post(f"/api/v1/identities/{victim.id}/enable").status_code == 200
    # Enabling again does not revive sessions from before the disable.
    assert anonymous.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert login("quinn").status_code == 200


def test_a_bad_login_rate_limit_stops_the_app_at_start_up():
    bare = Flask("misconfigured")
    bare.config.update(LOGIN_RATE_LIMIT="lots", REDIS_URL="redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match="LOGIN_RATE_LIMIT is invalid"):
        install_rate_limiter(bare)


def test_logout_everywhere_ends_every_session(create_identity, login, anonymous):
    create_identity("rita", password=PASSWORD)
    laptop, phone = login("rita").json, login("rita").json
    out = anonymous.post("/api/v1/auth/logout", headers=bearer(laptop["access_token"]), json={"everywhere": True})
    assert out.status_code == 204
    assert anonymous.get("/api/v1/auth/me", headers=bearer(phone["access_token"])).status_code == 401
    assert anonymous.post("/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]}).status_code == 401
    assert anonymous.get("/api/v1/auth/me", headers=bearer(login("rita").json["access_token"])).status_code == 200


def test_an_admin_password_reset_ends_the_identitys_sessions(create_identity, login, anonymous, api):
    sam = create_identity("sam", password=PASSWORD)
    tokens = login("sam").json
    reset = api.patch(f"/api/v1/identities/{sam.id}", json={"password": "reset-by-the-admin-42"})
    assert reset.status_code == 200
    assert anonymous.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert login("sam", "reset-by-the-admin-42").status_code == 200


def test_someone_elses_guesses_lock_a_user_out_of_login_but_not_out_of_their_session(create_identity, login,
                                                                                       anonymous, app):
    """The documented price of the per-username limit, and its bound: only password login."""
    create_identity("tess", password=PASSWORD)
    session = login("tess").json
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    for i in range(limit - 1):  # the login above counted too
        anonymous.client.environ_base["REMOTE_ADDR"] = f"198.51.100.{i + 1}"
        assert anonymous.post("/api/v1/auth/login", json={"username": "tess", "password": "a-guess-a-guess"}).status_code == 401
    anonymous.client.environ_base["REMOTE_ADDR"] = "192.0.2.200"
    assert login("tess").status_code == 429
    assert anonymous.get("/api/v1/auth/me", headers=bearer(session["access_token"])).status_code == 200
    assert anonymous.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 200
    create_identity("ursula", password=PASSWORD)
    assert login("ursula").status_code == 200
