"""Roles, grants and assignments (built-in roles are fixed: 409 on any change)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from app.db import db
from app.errors import Conflict, NotFound, ValidationError
from app.models import Identity, PermissionGrant, Role, RoleAssignment
from app.security.permissions import BUILTIN_ROLES, PERMISSIONS, is_pack_scopable


def ensure_builtin_roles() -> dict[str, Role]:
    """Create or refresh admin/operator/viewer with exactly their documented permissions."""
    roles: dict[str, Role] = {}
    for name, (description, permissions) in BUILTIN_ROLES.items():
        role = db.session.scalar(select(Role).where(Role.name == name))
        if role is None:
            role = Role(name=name, description=description, builtin=True)
            db.session.add(role)
            db.session.flush()
        role.description, role.builtin = description, True
        have = {(g.permission, g.pack) for g in role.grants}
        want = {(p, None) for p in permissions}
        for grant in list(role.grants):
            if (grant.permission, grant.pack) not in want:
                role.grants.remove(grant)
        for permission, pack in sorted(want - have):
            role.grants.append(PermissionGrant(permission=permission, pack=pack))
        roles[name] = role
    db.session.flush()
    return roles


def assign_role(identity: Identity, role: Role) -> None:
    exists = db.session.scalar(
        select(RoleAssignment.id).where(RoleAssignment.identity_id == identity.id, RoleAssignment.role_id == role.id)
    )
    if exists is None:
        db.session.add(RoleAssignment(identity_id=identity.id, role_id=role.id))
        db.session.flush()
        db.session.expire(identity, ["roles"])


ADMIN_ROLE = "admin"
# /api/v1/roles/permissions is the catalogue, so no role may be called that.
RESERVED_ROLE_NAMES = frozenset({"permissions"})


def get_role(name: str) -> Role:
    # PostgreSQL cannot compare text holding NUL; no role is named so.
    role = None if "\x00" in name else db.session.scalar(select(Role).where(Role.name == name))
    if role is None:
        raise NotFound(f"Role {name!r} does not exist.")
    return role


def _ensure_not_builtin(role: Role, doing: str) -> None:
    if role.builtin:
        raise Conflict(f"Role {role.name!r} is built in; it cannot be {doing}. Create a role instead.")


def grant_errors(permission: str, pack: str | None) -> dict[str, list[str]]:
    """Why a grant of ``permission`` (on ``pack``) is not valid; empty when it is."""
    if permission not in PERMISSIONS:
        return {"permission": [f"Unknown permission {permission!r}; see GET /api/v1/roles/permissions."]}
    if pack is not None and not is_pack_scopable(permission):
        return {"pack": [f"{permission} applies to every pack; it cannot be scoped to one."]}
    return {}


def create_role(name: str, description: str = "", grants: Iterable[dict[str, Any]] = ()) -> Role:
    if name in RESERVED_ROLE_NAMES:
        raise ValidationError("The role is not valid.", {"name": [f"{name!r} is reserved."]})
    if db.session.scalar(select(Role.id).where(Role.name == name)) is not None:
        raise Conflict(f"Role {name!r} already exists.", {"name": [f"{name!r} is taken."]})
    wanted = {(g["permission"], g.get("pack")) for g in grants}
    for index, (permission, pack) in enumerate(sorted(wanted, key=lambda w: (w[0], w[1] or ""))):
        errors = grant_errors(permission, pack)
        if errors:
            raise ValidationError("The role is not valid.", {"grants": {str(index): errors}})
    role = Role(name=name, description=description, builtin=False)
    role.grants = [PermissionGrant(permission=p, pack=pack) for p, pack in sorted(wanted, key=str)]
    db.session.add(role)
    db.session.flush()
    return role


def update_role(role: Role, description: str) -> Role:
    _ensure_not_builtin(role, "changed")
    role.description = description
    db.session.flush()
    return role


def delete_role(role: Role) -> None:
    """Delete a role; its grants and assignments go with it."""
    _ensure_not_builtin(role, "deleted")
    db.session.delete(role)
    db.session.flush()


def grant_permission(role: Role, permission: str, pack: str | None) -> Role:
    errors = grant_errors(permission, pack)
    if errors:
        raise ValidationError("The grant is not valid.", errors)
    _ensure_not_builtin(role, "changed")
    if any(g.permission == permission and g.pack == pack for g in role.grants):
        raise Conflict(f"Role {role.name!r} already has {permission}" + (f" on {pack}." if pack else "."))
    role.grants.append(PermissionGrant(permission=permission, pack=pack))
    db.session.flush()
    return role


def revoke_permission(role: Role, permission: str, pack: str | None) -> None:
    errors = grant_errors(permission, pack)
    if errors:
        raise ValidationError("The grant is not valid.", errors)
    _ensure_not_builtin(role, "changed")
    grant = next((g for g in role.grants if g.permission == permission and g.pack == pack), None)
    if grant is None:
        raise NotFound(f"Role {role.name!r} has no {permission}" + (f" on {pack}." if pack else "."))
    role.grants.remove(grant)
    db.session.flush()


def unassign_role(identity: Identity, role: Role) -> None:
    assignment = db.session.scalar(
        select(RoleAssignment).where(RoleAssignment.identity_id == identity.id, RoleAssignment.role_id == role.id)
    )
    if assignment is None:
        raise NotFound(f"{identity.name!r} does not have the role {role.name!r}.")
    if role.name == ADMIN_ROLE:
        ensure_another_admin(identity)
    db.session.delete(assignment)
    db.session.flush()
    db.session.expire(identity, ["roles"])


def ensure_another_admin(identity: Identity) -> None:
    """Refuse to lock everyone out: some other enabled identity must keep the admin role."""
    if not identity.enabled or ADMIN_ROLE not in {r.name for r in identity.roles}:
        return
    others = db.session.scalar(
        select(func.count(Identity.id))
        .join(RoleAssignment, RoleAssignment.identity_id == Identity.id)
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(Role.name == ADMIN_ROLE, Identity.enabled.is_(True), Identity.id != identity.id)
    )
    if not others:
        raise Conflict(f"{identity.name!r} is the last enabled admin; make someone else admin first.")


def admin_exists() -> bool:
    return db.session.scalar(
        select(Identity.id)
        .join(RoleAssignment, RoleAssignment.identity_id == Identity.id)
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(Role.name == ADMIN_ROLE, Identity.enabled.is_(True))
        .limit(1)
    ) is not None
