"""Identities: people (password login) and service accounts (API keys only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import db, utcnow
from app.errors import Conflict, NotFound, Unauthorized, ValidationError
from app.models import Identity
from app.services.content import assign
from app.services.passwords import hash_password, needs_rehash, password_problems, verify_or_burn
from app.services.rbac import assign_role, ensure_another_admin, get_role
from app.services.rows import row_by_id

LOGIN_FAILED = "The username or password is not correct."


def get_identity(identity_id: int) -> Identity:
    identity = row_by_id(Identity, identity_id)
    if identity is None:
        raise NotFound(f"Identity {identity_id} does not exist.")
    return identity


def find_identity(name: str) -> Identity | None:
    return db.session.scalar(select(Identity).where(Identity.name == name))


def check_password_policy(password: str, username: str, field: str = "password") -> None:
    problems = password_problems(password, username)
    if problems:
        raise ValidationError("The password does not meet the policy.", {field: problems})


def set_password(identity: Identity, password: str, field: str = "password") -> None:
    """Set a new password; every token issued before now stops working."""
    if identity.kind != "user":
        raise ValidationError("The request is not valid.", {field: ["Service accounts use API keys, not passwords."]})
    check_password_policy(password, identity.name, field)
    identity.password_hash = hash_password(password)
    identity.tokens_valid_after = utcnow()
    db.session.flush()


def end_all_sessions(identity: Identity) -> None:
    """Every token issued to ``identity`` until now stops working (API keys are untouched)."""
    identity.tokens_valid_after = utcnow()
    db.session.flush()


def create_identity(data: dict[str, Any]) -> Identity:
    if find_identity(data["name"]) is not None:
        raise Conflict(f"Identity {data['name']!r} already exists.", {"name": [f"{data['name']!r} is taken."]})
    roles = [get_role_or_422(name) for name in data.get("roles", [])]
    identity = Identity(name=data["name"], display_name=data.get("display_name", ""),
                        email=data.get("email"), kind=data.get("kind", "user"), enabled=True)
    db.session.add(identity)
    db.session.flush()
    if data.get("password") is not None:
        set_password(identity, data["password"])
    for role in roles:
        assign_role(identity, role)
    return identity


def get_role_or_422(name: str):
    try:
        return get_role(name)
    except NotFound:
        raise ValidationError("The request is not valid.", {"roles": [f"Role {name!r} does not exist."]}) from None


def update_identity(identity: Identity, data: dict[str, Any]) -> Identity:
    assign(identity, data, ("display_name", "email"))
    if data.get("password") is not None:
        set_password(identity, data["password"])
    db.session.flush()
    return identity


def set_enabled(identity: Identity, enabled: bool, actor: Identity) -> Identity:
    """Enable or disable; a disabled identity's tokens and API keys stop working at once."""
    if not enabled:
        if identity.id == actor.id:
            raise Conflict("You cannot disable yourself.")
        ensure_another_admin(identity)
        identity.tokens_valid_after = utcnow()
    identity.enabled = enabled
    db.session.flush()
    return identity


def delete_identity(identity: Identity, actor: Identity) -> None:
    """Delete an identity with its role assignments and API keys."""
    if identity.id == actor.id:
        raise Conflict("You cannot delete yourself.")
    ensure_another_admin(identity)
    db.session.delete(identity)
    db.session.flush()


def login(username: str, password: str) -> Identity:
    """The enabled person with this username and password; 401 (one message) otherwise."""
    identity = find_identity(username)
    password_hash = identity.password_hash if identity is not None and identity.kind == "user" else None
    if not verify_or_burn(password_hash, password) or identity is None or not identity.enabled:
        raise Unauthorized(LOGIN_FAILED)
    if needs_rehash(identity.password_hash or ""):
        identity.password_hash = hash_password(password)
    identity.last_login_at = utcnow()
    db.session.flush()
    return identity


def register(data: dict[str, Any]) -> Identity:
    """Self-registration: a user with no role until an admin assigns one."""
    check_password_policy(data["password"], data["username"])
    return create_identity({"name": data["username"], "display_name": data.get("display_name", ""),
                            "email": data.get("email"), "kind": "user", "password": data["password"]})
