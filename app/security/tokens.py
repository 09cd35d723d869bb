"""JWT issue and revocation (a Redis blocklist by jti, shared by every web process)."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from app.extensions import redis_client

BLOCKLIST_PREFIX = "patchbay:jwt:revoked:"


def issue_tokens(identity_id: int, fresh: bool = True) -> dict[str, str]:
    sub = str(identity_id)
    return {
        "access_token": create_access_token(identity=sub, fresh=fresh),
        "refresh_token": create_refresh_token(identity=sub),
        "token_type": "Bearer",
        "expires_in": int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
    }


def revoke(token_or_claims: str | dict) -> None:
    claims = decode_token(token_or_claims) if isinstance(token_or_claims, str) else token_or_claims
    ttl = max(int(claims["exp"] - claims["iat"]), 1)
    redis_client().set(BLOCKLIST_PREFIX + claims["jti"], "1", ex=ttl + 60)


def is_revoked(jti: str) -> bool:
    return bool(redis_client().exists(BLOCKLIST_PREFIX + jti))


def lifetimes(config: dict) -> dict[str, timedelta]:
    return {
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=config["JWT_ACCESS_TOKEN_MINUTES"]),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=config["JWT_REFRESH_TOKEN_DAYS"]),
    }
