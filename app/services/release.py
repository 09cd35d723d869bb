"""The release step (Heroku release phase): everything a deploy needs before traffic."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from app.db import db
from app.models import Pack
from app.services import pack_config, unit_of_work
from app.services.bootstrap import bootstrap_admin
from app.services.pack_loader import register_all
from app.services.rbac import ensure_builtin_roles


def run_release(generate_admin: bool = False) -> Iterator[str]:
    """Built-in roles, the first admin, then every pack in PACKS_PATH; one commit per stage."""
    ensure_builtin_roles()
    db.session.commit()
    yield "built-in roles: admin, operator, viewer"
    yield from bootstrap_admin(generate=generate_admin)
    db.session.commit()
    for result in register_all():
        yield result.summary()
    db.session.commit()
    moved = move_config_secrets_to_vault()
    if moved:
        yield f"pack config secrets moved to Vault: {', '.join(moved)}"


def move_config_secrets_to_vault() -> list[str]:
    """Packs whose config still holds a declared secret in clear (written before secrets
    lived in Vault): store each again, so PostgreSQL keeps only the mask. One commit each."""
    moved = []
    for pack in db.session.scalars(select(Pack).order_by(Pack.name)).all():
        if pack_config.declared_secrets(pack.config_schema, pack.config or {}):
            pack.config = pack_config.store(pack, pack.config_schema, dict(pack.config or {}))
            unit_of_work.commit()
            moved.append(pack.name)
    return moved
