"""Loading a row by the id a URL gave."""

from __future__ import annotations

from typing import TypeVar

from app.db import db

T = TypeVar("T")

# Ids are PostgreSQL bigints; a larger one in a URL names no row (rather than a query error).
BIGINT_MAX = 2**63 - 1


def row_by_id(model: type[T], row_id: int) -> T | None:
    """The row with this id, or None — also for ids no bigint can hold."""
    return db.session.get(model, row_id) if 0 < row_id <= BIGINT_MAX else None


