"""The release step (Heroku release phase): everything a deploy needs before traffic."""

from __future__ import annotations

from collections.abc import Iterator

from app.db import db
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
