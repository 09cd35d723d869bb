"""Fixtures for the hardening tests: row counts, audit entries by request id, clean rate limits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select


@pytest.fixture
def count_rows(db_session):
    """count_rows(Model, ...) -> a tuple of row counts, to prove a refused call wrote nothing."""

    def count(*models: type) -> tuple[int, ...]:
        db_session.expire_all()
        return tuple(db_session.scalar(select(func.count()).select_from(model)) for model in models)

    return count


@pytest.fixture
def audit_entries(app):
    """audit_entries(request_id) -> rows, read on a fresh connection (entries commit on their own)."""
    from app.db import db
    from app.models import AuditEntry

    def read(request_id: str) -> list:
        with db.engine.connect() as connection:
            return connection.execute(
                select(AuditEntry.__table__).where(AuditEntry.request_id == request_id)).all()

    return read
