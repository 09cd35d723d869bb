"""JWT issue and revocation (a Redis blocklist by jti, shared by every web process)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from app.extensions import redis_client

BLOCKLIST_PREFIX = "patchbay:jwt:revoked:"
# JWT's ``iat`` has whole seconds; comparing it with ``tokens_valid_after`` would let a token
# issued in the same second as a password change survive it. This claim keeps microseconds.
ISSUED_AT_CLAIM = "pb_iat"
# A login starts a session: its refresh token and every access token issued from it carry the
# session's id, so logging out with just the access token also ends the refresh token (which
# the client may not send, and which would otherwise keep minting access tokens for days).
SESSION_CLAIM = "pb_sid"
SESSION_PREFIX = "patchbay:jwt:ended-session:"


def issue_access_token(identity_id: int, fresh: bool = False, session: str | None = None) -> str:
    claims: dict[str, Any] = {ISSUED_AT_CLAIM: time.time()}
    if session:
        claims[SESSION_CLAIM] = session
    return create_access_token(identity=str(identity_id), fresh=fresh, additional_claims=claims)


def issue_tokens(identity_id: int, fresh: bool = True) -> dict[str, Any]:
    """A new session: an access token and a refresh token sharing one session id."""
    session = uuid.uuid4().hex
    return {
        "access_token": issue_access_token(identity_id, fresh=fresh, session=session),
        "refresh_token": create_refresh_token(
            identity=str(identity_id), additional_claims={ISSUED_AT_CLAIM: time.time(), SESSION_CLAIM: session}
        ),
        "token_type": "Bearer",
        "expires_in": access_lifetime_seconds(),
    }


def access_lifetime_seconds() -> int:
    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())


def issued_at(claims: dict[str, Any]) -> float:
    value = claims.get(ISSUED_AT_CLAIM)
    return float(value) if isinstance(value, (int, float)) else float(claims["iat"])


def revoke(token_or_claims: str | dict[str, Any]) -> None:
    """Block a token by jti until it would have expired anyway (then Redis forgets it)."""
    claims = decode_token(token_or_claims) if isinstance(token_or_claims, str) else token_or_claims
    ttl = max(int(claims["exp"] - time.time()), 1)
    redis_client().set(BLOCKLIST_PREFIX + claims["jti"], "1", ex=ttl + 60)


def end_session(claims: dict[str, Any]) -> None:
    """Refuse every token of the session ``claims`` belong to (its refresh token included)."""
    session = claims.get(SESSION_CLAIM)
    if not isinstance(session, str) or not session:
        return
    config = current_app.config
    # The session's last access token can be minted just before its refresh token expires.
    ttl = config["JWT_REFRESH_TOKEN_EXPIRES"] + config["JWT_ACCESS_TOKEN_EXPIRES"]
    redis_client().set(SESSION_PREFIX + session, "1", ex=int(ttl.total_seconds()) + 60)


def revocation_keys(claims: dict[str, Any]) -> list[str]:
    """The Redis keys whose presence means the token was revoked (by jti, or its session)."""
    keys = [BLOCKLIST_PREFIX + claims["jti"]]
    session = claims.get(SESSION_CLAIM)
    if isinstance(session, str) and session:
        keys.append(SESSION_PREFIX + session)
    return keys


def is_revoked(claims: dict[str, Any]) -> bool:
    """The token was revoked by its jti, or its session was ended."""
    return bool(redis_client().exists(*revocation_keys(claims)))


def lifetimes(config: dict) -> dict[str, timedelta]:
    return {
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=config["JWT_ACCESS_TOKEN_MINUTES"]),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=config["JWT_REFRESH_TOKEN_DAYS"]),
    }
