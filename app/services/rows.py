"""Loading a row by the id a URL gave."""

from __future__ import annotations

from typing import TypeVar

from app.db import BIGINT_MAX, db

T = TypeVar("T")


def row_by_id(model: type[T], row_id: int) -> T | None:
    """The row with this id, or None — also for ids no bigint can hold."""
    return db.session.get(model, row_id) if 0 < row_id <= BIGINT_MAX else None


