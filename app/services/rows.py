"""Loading a row by the id a URL gave; adding a row in one statement on hot paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, insert
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

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
        return _join_session(self.model, {"id": row_id, **row})


def column_list(model: type, alias: str | None = None) -> str:
    """``model``'s columns for a SELECT or RETURNING list, by name, in the order
    ``loaded_row`` reads them (never ``*``: a table's order may differ from the model's)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f'{prefix}"{column.name}"' for column in model.__table__.columns)  # type: ignore[attr-defined]


def loaded_row(model: type[T], row: Sequence[Any]) -> T | None:
    """The session's object for ``row`` — ``model``'s columns as ``column_list`` names them,
    read on the driver's cursor (``attach_loaded``); None for a row of NULLs (an outer join
    that found nothing)."""
    mapper = model.__mapper__  # type: ignore[attr-defined]
    values = {mapper.get_property_by_column(column).key: value
              for column, value in zip(model.__table__.columns, row, strict=True)}  # type: ignore[attr-defined]
    return attach_loaded(model, values) if values["id"] is not None else None


def attach_loaded(model: type[T], values: dict[str, Any]) -> T:
    """The session's persistent object for a row read without the ORM (``values`` by
    attribute name, every column): the object already in the session, its attributes set to
    ``values`` as loaded (as ``populate_existing`` would), or a new one joining it — without
    the ORM's row processing, which for a wide row on a hot path cost more than the query."""
    key = db.session.identity_key(model, values["id"])
    existing = db.session.identity_map.get(key)
    if existing is not None:
        for name, value in values.items():
            set_committed_value(existing, name, value)
        return existing
    return _join_session(model, values)


def _join_session(model: type[T], values: dict[str, Any]) -> T:
    """A new persistent object of ``model`` holding ``values`` (every column, by attribute)
    as if the ORM had loaded it. The values go straight into the instance's dict, as the
    ORM's own loading does — not through the constructor's instrumented attribute events,
    which kept history for values that are already committed."""
    obj = model.__mapper__.class_manager.new_instance()  # type: ignore[attr-defined]
    obj.__dict__.update(values)
    make_transient_to_detached(obj)
    db.session.add(obj)
    return obj
