"""Loading a row by the id a URL gave; adding a row in one statement on hot paths."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, insert
from sqlalchemy.orm import make_transient_to_detached

from app.db import BIGINT_MAX, db

T = TypeVar("T")


def row_by_id(model: type[T], row_id: int) -> T | None:
    """The row with this id, or None — also for ids no bigint can hold."""
    return db.session.get(model, row_id) if 0 < row_id <= BIGINT_MAX else None


class RowInserter(Generic[T]):
    """``RowInserter(Model)(**values)``: one ``INSERT … RETURNING id`` in the session's
    transaction, giving back the session's persistent object for the new row, every column
    loaded — for rows written on every request or event (executions, events), where the
    ORM's flush of one new object (its unit of work) costs several times the statement.

    Columns the caller leaves out get the model's default (constants once, callables such as
    ``dict`` or ``utcnow`` per row); a None is SQL NULL, as the ORM stores an attribute it was
    not given — but JSON null in a JSON column that cannot be NULL (an event's payload may be
    ``null``), as the ORM stores a None it was given. Later changes to the object are flushed
    as ORM updates, as for any loaded row; a rollback removes it.
    """

    def __init__(self, model: type[T]) -> None:
        table = model.__table__  # type: ignore[attr-defined]
        columns = [column for column in table.columns if column.key != "id"]
        self.model = model
        self.constants = {column.key: column.default.arg if column.default is not None else None
                          for column in columns if column.default is None or not column.default.is_callable}
        self.callables = {column.key: column.default.arg for column in columns
                          if column.default is not None and column.default.is_callable}
        self.json_not_null = {column.key for column in columns
                              if isinstance(column.type, JSON) and not column.nullable}
        self.statement = insert(table).returning(table.c.id)

    def __call__(self, **values: Any) -> T:
        unknown = set(values) - self.constants.keys() - self.callables.keys()
        if unknown:
            raise TypeError(f"not {self.model.__name__} columns: {sorted(unknown)}")
        row = {**self.constants, **{key: make(None) for key, make in self.callables.items() if key not in values},
               **values}
        given = {k: v for k, v in row.items() if v is not None}
        given.update({key: JSON.NULL for key in self.json_not_null if row.get(key) is None})
        row_id = db.session.execute(self.statement, given).scalar_one()
        obj = self.model(id=row_id, **row)
        make_transient_to_detached(obj)
        db.session.add(obj)
        return obj
