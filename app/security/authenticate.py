"""Turn request credentials into a Principal (or None)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import current_app, g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from sqlalchemy import select

from app.db import db, utcnow
from app.errors import Unauthorized
from app.models import ApiKey, Identity, PermissionGrant, Role, RoleAssignment
from app.security.keys import API_KEY_HASHING, derived_key
from app.security.principal import Principal
from app.security.tokens import is_revoked, issued_at

API_KEY_HEADER = "X-API-Key"
API_KEY_PREFIX = "pbk"


def hash_api_key(secret: str) -> str:
    """HMAC-SHA256 of a key under the API-key hashing key derived from SECRET_KEY."""
    # API keys are 256 random bits, so a fast keyed hash is as safe as a slow one and keeps
    # per-request authentication cheap (passwords, being guessable, use argon2).
    key = derived_key(current_app.config["SECRET_KEY"], API_KEY_HASHING)
    return hmac.new(key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def legacy_api_key_hash(secret: str) -> str:
    """The hash keys were stored under before the derived key: HMAC keyed by SECRET_KEY."""
    return hmac.new(current_app.config["SECRET_KEY"].encode(), secret.encode(), hashlib.sha256).hexdigest()


def _matching_key(key: ApiKey | None, raw: str) -> bool:
    """Whether ``raw`` is ``key``'s secret; a key stored with the legacy hash is rehashed."""
    if key is None:
        return False
    if hmac.compare_digest(key.key_hash, hash_api_key(raw)):
        return True
    legacy = legacy_api_key_hash(raw)
    if not hmac.compare_digest(key.key_hash, legacy):
        return False
    # Issued before the derived key: move it to the new hash once, in place (the guard on the
    # old hash makes two concurrent first uses harmless).
    new_hash = hash_api_key(raw)
    db.session.execute(
        ApiKey.__table__.update().where(ApiKey.id == key.id, ApiKey.key_hash == legacy).values(key_hash=new_hash)
    )
    db.session.commit()
    return True


def new_api_key() -> tuple[str, str, str]:
    """Return (full key shown once, prefix stored in clear, hash stored)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    full = f"{API_KEY_PREFIX}_{prefix}_{secret}"
    return full, prefix, hash_api_key(full)


def load_grants(identity: Identity) -> tuple[frozenset[tuple[str, str | None]], tuple[str, ...]]:
    rows = db.session.execute(
        select(Role.name, PermissionGrant.permission, PermissionGrant.pack)
        .join(RoleAssignment, RoleAssignment.role_id == Role.id)
        .outerjoin(PermissionGrant, PermissionGrant.role_id == Role.id)
        .where(RoleAssignment.identity_id == identity.id)
    ).all()
    roles = tuple(sorted({r.name for r in rows}))
    grants = frozenset((r.permission, r.pack) for r in rows if r.permission)
    return grants, roles


def principal_for(identity: Identity, api_key: ApiKey | None = None, jti: str | None = None,
                  claims: dict[str, Any] | None = None) -> Principal:
    grants, roles = load_grants(identity)
    if api_key is not None and api_key.permissions is not None:
        narrowed = set(api_key.permissions)
        grants = frozenset(g_ for g_ in grants if g_[0] in narrowed)
    return Principal(identity=identity, grants=grants, roles=roles, api_key=api_key, token_jti=jti,
                     token_claims=claims)


def _from_api_key(raw: str) -> Principal:
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        raise Unauthorized("The API key is not valid.")
    key = db.session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    now = utcnow()
    if (
        not _matching_key(key, raw.strip())
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
        or not key.identity.enabled
    ):
        raise Unauthorized("The API key is not valid.")
    # Touch last_used_at at most once a minute so reads stay reads.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        db.session.execute(
            ApiKey.__table__.update().where(ApiKey.id == key.id).values(last_used_at=now)
        )
        db.session.commit()
    return principal_for(key.identity, api_key=key)


def decode_claims(token: str, expected_type: str) -> dict[str, Any]:
    """Verified claims of a token of ``expected_type`` (access or refresh); 401 otherwise."""
    try:
        claims = decode_token(token)
    except (JWTExtendedException, PyJWTError, ValueError, KeyError):
        raise Unauthorized("The token is not valid or has expired.") from None
    if claims.get("type") != expected_type:
        raise Unauthorized(f"An {expected_type} token is required." if expected_type == "access"
                           else f"A {expected_type} token is required.")
    return claims


def identity_for_claims(claims: dict[str, Any]) -> Identity:
    """The enabled identity a token speaks for, unless it was revoked or predates a reset."""
    if is_revoked(claims):
        raise Unauthorized("The token has been revoked.")
    sub = str(claims.get("sub", ""))
    identity = db.session.get(Identity, int(sub)) if sub.isdigit() else None
    if identity is None or not identity.enabled:
        raise Unauthorized("The token is not valid or has expired.")
    if identity.tokens_valid_after is not None and issued_at(claims) < identity.tokens_valid_after.timestamp():
        raise Unauthorized("The token has been revoked.")
    return identity


def _from_bearer(token: str) -> Principal:
    claims = decode_claims(token, "access")
    identity = identity_for_claims(claims)
    return principal_for(identity, jti=claims["jti"], claims=claims)


def authenticate() -> Principal | None:
    """The caller's Principal, None without credentials; 401 for bad credentials."""
    if "principal" in g:
        return g.principal
    api_key = request.headers.get(API_KEY_HEADER)
    if api_key:
        return _from_api_key(api_key)
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use 'Authorization: Bearer <token>'.")
        return _from_bearer(token.strip())
    return None
