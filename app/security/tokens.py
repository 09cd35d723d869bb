"""JWT issue and revocation (a Redis blocklist by jti, shared by every web process)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from app.extensions import redis_client

BLOCKLIST_PREFIX = "patchbay:jwt:revoked:"
# JWT's ``iat`` has whole seconds; comparing it with ``tokens_valid_after`` would let a token
# issued in the same second as a password change survive it. This claim keeps microseconds.
ISSUED_AT_CLAIM = "pb_iat"


def issue_access_token(identity_id: int, fresh: bool = False) -> str:
    return create_access_token(
        identity=str(identity_id), fresh=fresh, additional_claims={ISSUED_AT_CLAIM: time.time()}
    )


def issue_tokens(identity_id: int, fresh: bool = True) -> dict[str, Any]:
    return {
        "access_token": issue_access_token(identity_id, fresh=fresh),
        "refresh_token": create_refresh_token(
            identity=str(identity_id), additional_claims={ISSUED_AT_CLAIM: time.time()}
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


def is_revoked(jti: str) -> bool:
    return bool(redis_client().exists(BLOCKLIST_PREFIX + jti))


def lifetimes(config: dict) -> dict[str, timedelta]:
    return {
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=config["JWT_ACCESS_TOKEN_MINUTES"]),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=config["JWT_REFRESH_TOKEN_DAYS"]),
    }
