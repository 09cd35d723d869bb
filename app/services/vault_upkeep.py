"""Secrets in Vault that nothing needs any more.

An execution's secret values, and a secret key's value, are written to Vault before their
row is committed, and deleted when the execution ends or the key goes (or when the
transaction rolls back). A process that dies between the write and the commit, or between
the end and the delete, leaves a secret behind: this finds them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.db import db, utcnow
from app.models import Execution, Key
from app.models.execution import TERMINAL
from app.services import vault

# A secret this young may belong to a row whose transaction has not committed yet.
ORPHAN_SECRET_AGE = timedelta(hours=1)
BATCH = 1000


def purge_orphan_execution_secrets() -> list[int]:
    """Delete the secrets of executions that ended or were never committed; return their ids."""
    ids = sorted(int(key) for key in vault.list_keys("executions/") if key.isdigit())[:BATCH]
    if not ids:
        return []
    rows = dict(db.session.execute(select(Execution.id, Execution.status).where(Execution.id.in_(ids))).all())
    db.session.rollback()
    removed = []
    for execution_id in ids:
        status = rows.get(execution_id)
        if status is not None and status not in TERMINAL:
            continue  # queued, running or waiting: it still needs them
        path = vault.execution_secret_path(execution_id)
        if status is None and not _older_than(vault.created_time(path), ORPHAN_SECRET_AGE):
            continue
        vault.delete_secret(path)
        removed.append(execution_id)
    return removed


def _older_than(created: str | None, age: timedelta) -> bool:
    if created is None:
        return False
    # Vault writes nanoseconds ("…T12:00:00.123456789Z"); datetime takes microseconds.
    when = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", created).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return utcnow() - when > age


def purge_orphan_key_secrets() -> list[str]:
    """Delete key secrets (``keys/system/<name>``, ``keys/user/<owner>/<name>``) that no key
    row points at, once older than ORPHAN_SECRET_AGE; return their paths."""
    paths = [f"keys/system/{name}" for name in vault.list_keys("keys/system/") if not name.endswith("/")]
    for owner in vault.list_keys("keys/user/"):
        if owner.endswith("/"):
            paths += [f"keys/user/{owner}{name}" for name in vault.list_keys(f"keys/user/{owner}")
                      if not name.endswith("/")]
    paths = sorted(paths)[:BATCH]
    if not paths:
        return []
    used = set(db.session.scalars(select(Key.vault_path).where(Key.vault_path.in_(paths))).all())
    db.session.rollback()
    removed = []
    for path in paths:
        if path in used or not _older_than(vault.created_time(path), ORPHAN_SECRET_AGE):
            continue
        # Checked again just before: a key written since the first look keeps its secret.
        if db.session.scalar(select(Key.id).where(Key.vault_path == path).limit(1)) is None:
            vault.delete_secret(path)
            removed.append(path)
        db.session.rollback()
    return removed
