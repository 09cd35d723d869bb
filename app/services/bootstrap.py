"""The first admin: from PATCHBAY_ADMIN_USER / PATCHBAY_ADMIN_PASSWORD, generated, or typed in."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

from flask import current_app

from app.config import ConfigError
from app.db import db
from app.errors import ValidationError
from app.models import Identity
from app.services.identities import check_password_policy, find_identity, set_password
from app.services.passwords import password_problems
from app.services.rbac import ADMIN_ROLE, admin_exists, assign_role, ensure_builtin_roles

DEFAULT_ADMIN = "admin"


def make_admin(name: str, password: str) -> Identity:
    """Create ``name`` (or take the existing one), set its password, enable it, make it admin."""
    roles = ensure_builtin_roles()
    check_password_policy(password, name)
    identity = find_identity(name)
    if identity is None:
        identity = Identity(name=name, display_name=name, kind="user", enabled=True)
        db.session.add(identity)
        db.session.flush()
    identity.kind, identity.enabled = "user", True
    set_password(identity, password)
    assign_role(identity, roles[ADMIN_ROLE])
    return identity


def generate_password() -> str:
    password = secrets.token_urlsafe(18)
    while password_problems(password, DEFAULT_ADMIN):  # e.g. "admin" turned up by chance
        password = secrets.token_urlsafe(18)
    return password


def bootstrap_admin(generate: bool) -> Iterator[str]:
    """Release step: make sure an admin exists; yields what it did (a generated password once)."""
    ensure_builtin_roles()
    if admin_exists():
        yield "admin: an enabled admin exists; nothing to do"
        return
    name = current_app.config.get("PATCHBAY_ADMIN_USER") or ""
    password = current_app.config.get("PATCHBAY_ADMIN_PASSWORD") or ""
    if name and password:
        try:
            make_admin(name, password)
        except ValidationError as exc:
            problems = " ".join(exc.errors.get("password", []))
            raise ConfigError(f"PATCHBAY_ADMIN_PASSWORD is invalid: {problems}") from None
        yield f"admin: created {name!r} from PATCHBAY_ADMIN_USER"
    elif name or password:
        raise ConfigError("PATCHBAY_ADMIN_USER and PATCHBAY_ADMIN_PASSWORD must be set together")
    elif generate:
        password = generate_password()
        make_admin(DEFAULT_ADMIN, password)
        # Printed this once only: it is stored hashed.
        yield (f"admin: created {DEFAULT_ADMIN!r} with the generated password {password} "
               "(shown once; change it with POST /api/v1/auth/password)")
    else:
        yield ("admin: none exists; set PATCHBAY_ADMIN_USER and PATCHBAY_ADMIN_PASSWORD, "
               "run the release with --generate-admin, or run `python -m app.cli create-admin`")
