"""Turn request credentials into a Principal (or None).

What a credential speaks for is cached per process and checked against Redis stamps on
every request (app.security.auth_cache); the database is read when an entry is missing,
stale or cannot be checked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import Any

from flask import current_app, g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from redis import RedisError
from sqlalchemy import select
from sqlalchemy.orm import lazyload

from app.db import db, utcnow
from app.errors import Unauthorized
from app.models import ApiKey, Identity, PermissionGrant, Role, RoleAssignment
from app.security.auth_cache import (
    Entry,
    IdentityInfo,
    Stamps,
    ensure_stamps,
    entries,
    key_entry,
    read_stamps,
    redis_client,
    token_entry,
    verified_tokens,
)
from app.security.keys import API_KEY_HASHING, derived_key
from app.security.principal import KeyInfo, Principal
from app.security.run_tokens import RUN_TOKEN_HEADER, principal_for_run_token
from app.security.tokens import is_revoked, issued_at, revocation_keys

log = logging.getLogger("patchbay.auth")

API_KEY_HEADER = "X-API-Key"
API_KEY_PREFIX = "pbk"
INVALID_KEY = "The API key is not valid."
INVALID_TOKEN = "The token is not valid or has expired."


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


def load_grants(identity_id: int) -> tuple[frozenset[tuple[str, str | None]], tuple[str, ...]]:
    rows = db.session.execute(
        select(Role.name, PermissionGrant.permission, PermissionGrant.pack)
        .join(RoleAssignment, RoleAssignment.role_id == Role.id)
        .outerjoin(PermissionGrant, PermissionGrant.role_id == Role.id)
        .where(RoleAssignment.identity_id == identity_id)
    ).all()
    roles = tuple(sorted({r.name for r in rows}))
    grants = frozenset((r.permission, r.pack) for r in rows if r.permission)
    return grants, roles


def load_identity(identity_id: int) -> IdentityInfo | None:
    """What authentication needs of an identity: two narrow queries, no ORM relationships."""
    row = db.session.execute(
        select(Identity.id, Identity.name, Identity.enabled, Identity.tokens_valid_after)
        .where(Identity.id == identity_id)
    ).first()
    if row is None:
        return None
    grants, roles = load_grants(identity_id)
    return IdentityInfo(id=row.id, name=row.name, enabled=row.enabled,
                        tokens_valid_after=row.tokens_valid_after, grants=grants, roles=roles)


def principal_for(entry: Entry, jti: str | None = None, claims: dict[str, Any] | None = None) -> Principal:
    grants = entry.identity.grants
    if entry.key is not None and entry.key.permissions is not None:
        narrowed = set(entry.key.permissions)
        grants = frozenset(g_ for g_ in grants if g_[0] in narrowed)
    return Principal(identity_id=entry.identity.id, name=entry.identity.name, grants=grants,
                     roles=entry.identity.roles, api_key=entry.key, token_jti=jti, token_claims=claims)


def _stamps_before_loading(identity_id: int) -> Stamps | None:
    """The stamps to tag a fresh entry with (None without Redis: then nothing is cached)."""
    try:
        return ensure_stamps(redis_client(), identity_id)
    except RedisError:
        log.warning("Redis is not available: authenticating API keys from the database")
        return None


def _cached_key(key_hash: str) -> Entry | None:
    cache = entries(current_app)
    identity_id = cache.peek_identity_id(key_entry(key_hash))
    if identity_id is None:
        return None
    try:
        stamps, _ = read_stamps(redis_client(), identity_id)
    except RedisError:
        return None  # never trust an entry that cannot be checked
    return cache.get(key_entry(key_hash), stamps) if stamps is not None else None


def _load_key(prefix: str, raw: str, key_hash: str) -> Entry:
    owner = db.session.scalar(select(ApiKey.identity_id).where(ApiKey.prefix == prefix))
    if owner is None:
        raise Unauthorized(INVALID_KEY)
    # Stamps first, rows second: a change committed in between shows in the rows or the stamps.
    stamps = _stamps_before_loading(owner)
    key = db.session.scalar(select(ApiKey).options(lazyload(ApiKey.identity)).where(ApiKey.prefix == prefix))
    if not _matching_key(key, raw):
        raise Unauthorized(INVALID_KEY)
    identity = load_identity(key.identity_id)
    if identity is None:
        raise Unauthorized(INVALID_KEY)
    info = KeyInfo(id=key.id, prefix=key.prefix,
                   permissions=tuple(key.permissions) if key.permissions is not None else None,
                   expires_at=key.expires_at, revoked=key.revoked_at is not None, last_used_at=key.last_used_at)
    entry = Entry(identity=identity, key=info, stamps=stamps or ("", ""), loaded=time.monotonic())
    if stamps is not None:
        entries(current_app).put(key_entry(key_hash), entry)
    return entry


def _from_api_key(raw: str) -> Principal:
    raw = raw.strip()
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        raise Unauthorized(INVALID_KEY)
    key_hash = hash_api_key(raw)
    entry = _cached_key(key_hash) or _load_key(parts[1], raw, key_hash)
    key, now = entry.key, utcnow()
    if key.revoked or (key.expires_at is not None and key.expires_at <= now) or not entry.identity.enabled:
        raise Unauthorized(INVALID_KEY)
    # Touch last_used_at at most once a minute so reads stay reads.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        db.session.execute(ApiKey.__table__.update().where(ApiKey.id == key.id).values(last_used_at=now))
        db.session.commit()
        entries(current_app).touched(key_entry(key_hash), now)
    return principal_for(entry)


def decode_claims(token: str, expected_type: str) -> dict[str, Any]:
    """Verified claims of a token of ``expected_type`` (access or refresh); 401 otherwise."""
    verified = verified_tokens(current_app) if expected_type == "access" else None
    claims = verified.get(token) if verified is not None else None
    if claims is None:
        try:
            claims = decode_token(token)
        except (JWTExtendedException, PyJWTError, ValueError, KeyError):
            raise Unauthorized(INVALID_TOKEN) from None
        if verified is not None and claims.get("type") == "access" and isinstance(claims.get("exp"), (int, float)):
            verified.put(token, claims)
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
        raise Unauthorized(INVALID_TOKEN)
    if identity.tokens_valid_after is not None and issued_at(claims) < identity.tokens_valid_after.timestamp():
        raise Unauthorized("The token has been revoked.")
    return identity


def _from_bearer(token: str) -> Principal:
    claims = decode_claims(token, "access")
    sub = str(claims.get("sub", ""))
    if not sub.isdigit():
        raise Unauthorized(INVALID_TOKEN)
    identity_id = int(sub)
    # One round trip: the stamps and the token's revocations (tokens need Redis: without it
    # a logout could not be honoured, so the call fails with 503 rather than guessing).
    client = redis_client()
    stamps, revocations = read_stamps(client, identity_id, revocation_keys(claims))
    if any(value is not None for value in revocations):
        raise Unauthorized("The token has been revoked.")
    cache = entries(current_app)
    entry = cache.get(token_entry(identity_id), stamps) if stamps is not None else None
    if entry is None:
        stamps = stamps or ensure_stamps(client, identity_id)
        identity = load_identity(identity_id)
        if identity is None:
            raise Unauthorized(INVALID_TOKEN)
        entry = Entry(identity=identity, key=None, stamps=stamps, loaded=time.monotonic())
        cache.put(token_entry(identity_id), entry)
    identity = entry.identity
    if not identity.enabled:
        raise Unauthorized(INVALID_TOKEN)
    if identity.tokens_valid_after is not None and issued_at(claims) < identity.tokens_valid_after.timestamp():
        raise Unauthorized("The token has been revoked.")
    return principal_for(entry, jti=claims["jti"], claims=claims)


def authenticate() -> Principal | None:
    """The caller's Principal, None without credentials; 401 for bad credentials."""
    if "principal" in g:
        return g.principal
    run_token = request.headers.get(RUN_TOKEN_HEADER)
    if run_token:
        return principal_for_run_token(run_token)
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
