"""Roles, grants and assignments."""

from __future__ import annotations

from sqlalchemy import select

from app.db import db
from app.models import Identity, PermissionGrant, Role, RoleAssignment
from app.security.permissions import BUILTIN_ROLES


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
