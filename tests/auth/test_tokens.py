"""Tokens that must not work: expired, tampered, unsigned, wrongly signed, revoked, disabled."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from tests.auth.conftest import bearer


@pytest.fixture
def alice(create_identity):
    return create_identity("alice", roles=["viewer"])


@pytest.fixture
def alice_token(app, alice):
    from app.security.tokens import issue_tokens

    with app.test_request_context():
        return issue_tokens(alice.id)["access_token"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_valid_token_works(anonymous, alice_token):
    assert anonymous.get("/api/v1/actions", headers=bearer(alice_token)).status_code == 200


def test_an_expired_token_is_refused(anonymous, app, alice):
    from flask_jwt_extended import create_access_token

    with app.test_request_context():
        token = create_access_token(identity=str(alice.id), expires_delta=timedelta(seconds=-30))
    answer = anonymous.get("/api/v1/actions", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json["message"] == "The token is not valid or has expired."


def test_a_tampered_token_is_refused(anonymous, alice_token, admin):
    header, _, signature = alice_token.split(".")
    claims = _claims(alice_token) | {"sub": str(admin.id)}
    assert anonymous.get("/api/v1/identities", headers=bearer(f"{header}.{_b64(claims)}.{signature}")).status_code == 401


def test_an_unsigned_alg_none_token_is_refused(anonymous, alice_token, admin):
    claims = _claims(alice_token) | {"sub": str(admin.id)}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert anonymous.get("/api/v1/identities", headers=bearer(token)).status_code == 401


def test_a_token_signed_with_another_key_is_refused(anonymous, alice_token):
    token = jwt.encode(_claims(alice_token), "some-other-secret-key-of-enough-length", algorithm="HS256")
    assert anonymous.get("/api/v1/actions", headers=bearer(token)).status_code == 401


def test_a_token_signed_with_secret_key_itself_is_refused(anonymous, app, alice_token, admin):
    """Tokens are signed with a key derived from SECRET_KEY, never with SECRET_KEY itself."""
    assert app.config["JWT_SECRET_KEY"] != app.config["SECRET_KEY"]
    claims = _claims(alice_token) | {"sub": str(admin.id)}
    forged = jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")
    answer = anonymous.get("/api/v1/identities", headers=bearer(forged))
    assert answer.status_code == 401
    assert answer.json["message"] == "The token is not valid or has expired."
    # The same claims signed with the derived key are what the server itself issues.
    genuine = jwt.encode(_claims(alice_token), app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert anonymous.get("/api/v1/actions", headers=bearer(genuine)).status_code == 200


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # SHA-512 wants a longer key; irrelevant here
def test_only_hs256_is_accepted_even_with_the_right_key(anonymous, app, alice_token, admin):
    """Algorithm confusion: the header names the algorithm, the server must not let it choose."""
    claims = _claims(alice_token) | {"sub": str(admin.id)}
    hs512 = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS512")
    assert anonymous.get("/api/v1/identities", headers=bearer(hs512)).status_code == 401
    # An RS256 header with the HMAC key as "public key" material (the classic RS/HS swap).
    payload = hs512.split(".")[1]
    rs256 = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{_b64({'x': 1})}"
    assert anonymous.get("/api/v1/identities", headers=bearer(rs256)).status_code == 401


def test_garbage_and_wrong_schemes_are_refused(anonymous):
    for header in ("Bearer not.a.jwt", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "Token abc"):
        answer = anonymous.get("/api/v1/actions", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert set(answer.json) == {"code", "status", "message", "errors"}


def test_a_revoked_token_is_refused(anonymous, app, alice_token):
    from app.security.tokens import revoke

    with app.app_context():
        revoke(alice_token)
    answer = anonymous.get("/api/v1/actions", headers=bearer(alice_token))
    assert answer.status_code == 401
    assert answer.json["message"] == "The token has been revoked."


def test_disabling_an_identity_stops_its_tokens_and_keys_at_once(api, anonymous, alice, alice_token, app, db_session):
    from app.models import ApiKey
    from app.security.authenticate import new_api_key

    with app.app_context():
        full, prefix, key_hash = new_api_key()
    db_session.add(ApiKey(identity_id=alice.id, name="ci", prefix=prefix, key_hash=key_hash))
    db_session.commit()
    assert anonymous.get("/api/v1/actions", headers={"X-API-Key": full}).status_code == 200
    assert api.post(f"/api/v1/identities/{alice.id}/disable").status_code == 200
    assert anonymous.get("/api/v1/actions", headers=bearer(alice_token)).status_code == 401
    assert anonymous.get("/api/v1/actions", headers={"X-API-Key": full}).status_code == 401
    # Enabling again brings the key back, but not tokens issued before the disable.
    assert api.post(f"/api/v1/identities/{alice.id}/enable").status_code == 200
    assert anonymous.get("/api/v1/actions", headers={"X-API-Key": full}).status_code == 200
    assert anonymous.get("/api/v1/actions", headers=bearer(alice_token)).status_code == 401


def test_a_token_of_a_deleted_identity_is_refused(api, anonymous, alice, alice_token):
    assert api.delete(f"/api/v1/identities/{alice.id}").status_code == 204
    assert anonymous.get("/api/v1/actions", headers=bearer(alice_token)).status_code == 401
