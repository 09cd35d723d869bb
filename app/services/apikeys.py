"""API keys: machine credentials acting with their owner's permissions, or fewer.

Only an HMAC-SHA256 of a key, under its own key derived from SECRET_KEY, is stored (see
app.security.authenticate.hash_api_key for why not argon2); the key itself is returned once,
by ``create_api_key``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select

from app.db import db, utcnow
from app.errors import NotFound, ValidationError
from app.models import ApiKey, Identity
from app.security.authenticate import load_grants, new_api_key
from app.security.permissions import PERMISSIONS
from app.security.principal import Principal
from app.services.rows import row_by_id

MANAGE = "rbac:manage"
# Python (and so psycopg, reading the row back) cannot hold a datetime past year 9999.
LATEST_EXPIRY = datetime(9999, 12, 31, tzinfo=UTC)


def held_permissions(principal: Principal, owner: Identity) -> set[str]:
    """Permission names a new key for ``owner`` may carry (a key cannot outgrow its creator)."""
    if owner.id == principal.identity_id:
        return {p for p, _ in principal.grants}
    grants, _ = load_grants(owner.id)
    return {p for p, _ in grants}


def create_api_key(principal: Principal, owner: Identity, name: str, permissions: list[str] | None,
                   expires_at: datetime | None) -> tuple[ApiKey, str]:
    """Create a key; returns (row, the full key to show once)."""
    narrowed_caller = principal.api_key is not None and principal.api_key.permissions is not None
    if permissions is None and narrowed_caller and owner.id == principal.identity_id:
        # A narrowed key minting a key must not hand out its owner's full permissions.
        permissions = list(principal.api_key.permissions)
    errors: dict[str, list[str]] = {}
    if permissions is not None:
        unknown = sorted(set(permissions) - set(PERMISSIONS))
        not_held = sorted(set(permissions) - set(unknown) - held_permissions(principal, owner))
        if unknown:
            errors.setdefault("permissions", []).append(f"Unknown permissions: {', '.join(unknown)}.")
        if not_held:
            errors.setdefault("permissions", []).append(
                f"The owner does not hold: {', '.join(not_held)}; a key can only narrow its owner's permissions.")
    if expires_at is not None and expires_at <= utcnow():
        errors["expires_at"] = ["Must be in the future."]
    elif expires_at is not None and expires_at > LATEST_EXPIRY:
        errors["expires_at"] = ["Must be before the year 10000 (UTC); omit it for a key that never expires."]
    if not owner.enabled:
        errors["owner"] = [f"{owner.name!r} is disabled."]
    if errors:
        raise ValidationError("The API key is not valid.", errors)
    full, prefix, key_hash = new_api_key()
    key = ApiKey(identity_id=owner.id, name=name, prefix=prefix, key_hash=key_hash,
                 permissions=sorted(set(permissions)) if permissions is not None else None,
                 expires_at=expires_at)
    db.session.add(key)
    db.session.flush()
    db.session.refresh(key)
    return key, full


def visible_keys(principal: Principal, args: dict[str, Any]) -> Select:
    """Everyone's keys for rbac:manage, one's own for everyone else; newest first."""
    query = select(ApiKey).join(Identity, Identity.id == ApiKey.identity_id)
    if not principal.can(MANAGE):
        query = query.where(ApiKey.identity_id == principal.identity_id)
    if args.get("owner"):
        query = query.where(Identity.name == args["owner"])
    if not args.get("include_revoked"):
        query = query.where(ApiKey.revoked_at.is_(None))
    return query.order_by(ApiKey.created_at.desc(), ApiKey.id.desc())


def get_visible_key(principal: Principal, key_id: int) -> ApiKey:
    key = row_by_id(ApiKey, key_id)
    # Someone else's key is as invisible as a missing one.
    if key is None or (key.identity_id != principal.identity_id and not principal.can(MANAGE)):
        raise NotFound(f"API key {key_id} does not exist.")
    return key


def revoke_api_key(key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.flush()
    return key
