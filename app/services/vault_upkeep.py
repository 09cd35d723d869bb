"""Secrets in Vault that nothing needs any more.

An execution's secret values are written to Vault before its row is committed, and deleted
when it ends (or when the transaction rolls back). A process that dies between the write and
the commit, or between the end and the delete, leaves a secret behind: this finds them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.db import db, utcnow
from app.models import Execution
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
