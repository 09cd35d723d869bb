"""The release step (Heroku release phase): everything a deploy needs before traffic."""

from __future__ import annotations

from collections.abc import Iterator

from app.db import db
from app.services.rbac import ensure_builtin_roles


def run_release(generate_admin: bool = False) -> Iterator[str]:
    ensure_builtin_roles()
    db.session.commit()
    yield "built-in roles: admin, operator, viewer"
    try:
        from app.services.bootstrap import bootstrap_admin
    except ImportError:
        bootstrap_admin = None
    if bootstrap_admin is not None:
        yield from bootstrap_admin(generate=generate_admin)
        db.session.commit()
    try:
        from app.services.pack_loader import register_all
    except ImportError:
        return
    for result in register_all():
        yield result.summary()
    db.session.commit()
