"""Helpers shared by the services of pack content (actions, triggers, sensors, rules)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select

from app.db import db
from app.engine.search import like_pattern
from app.engine.unstorable import unstorable_errors
from app.errors import Conflict, NotFound, ValidationError
from app.models import Pack

T = TypeVar("T")

# Deeper JSON than this is never a sensible definition, and deep enough to exhaust the stack
# of the JSON Schema validator.
MAX_JSON_DEPTH = 32


def find_by_ref(model: type[T], ref: str) -> T | None:
    # PostgreSQL cannot compare text with NUL in it; no stored ref holds one anyway.
    if "\x00" in ref:
        return None
    return db.session.scalar(select(model).where(model.ref == ref))  # type: ignore[attr-defined]


def missing(label: str, ref: str) -> str:
    """The one message for a ref that names no row (the API's and pack registration's)."""
    return f"{label} {ref!r} does not exist."


def get_by_ref(model: type[T], ref: str, label: str) -> T:
    item = find_by_ref(model, ref)
    if item is None:
        raise NotFound(missing(label, ref))
    return item


def pack_for_new_content(pack_name: str) -> Pack:
    pack = db.session.scalar(select(Pack).where(Pack.name == pack_name))
    if pack is None:
        raise ValidationError("The request is not valid.", {"pack": [f"Pack {pack_name!r} does not exist."]})
    return pack


def ensure_ref_free(model: type, ref: str, label: str) -> None:
    if db.session.scalar(select(model.id).where(model.ref == ref)) is not None:
        raise Conflict(f"{label} {ref!r} already exists.", {"ref": [f"{ref!r} is taken."]})


def assign(item: Any, data: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Copy the ``fields`` present in ``data`` onto ``item``."""
    for field in fields:
        if field in data:
            setattr(item, field, data[field])


def add_content(model: type[T], label: str, pack: Pack, data: dict[str, Any], fields: tuple[str, ...],
                source_file: str | None, **links: Any) -> T:
    """A new row of pack content from validated ``data`` (409 if its ref is taken; flush only)."""
    ref = f"{pack.name}.{data['name']}"
    ensure_ref_free(model, ref, label)
    item = model(pack_id=pack.id, pack_name=pack.name, name=data["name"], ref=ref,  # type: ignore[call-arg]
                 source_file=source_file, **links)
    assign(item, data, fields)
    db.session.add(item)
    db.session.flush()
    return item


def filter_content(query: Select, model: type, args: dict[str, Any], visible_packs: set[str] | None) -> Select:
    """Apply the filters every content list shares: pack, enabled, q (name search), RBAC."""
    if args.get("pack"):
        query = query.where(model.pack_name == args["pack"])
    if "enabled" in args and hasattr(model, "enabled"):
        query = query.where(model.enabled.is_(args["enabled"]))
    if args.get("q"):
        query = query.where(model.name.ilike(like_pattern(args["q"]), escape="\\"))
    if visible_packs is not None:
        query = query.where(model.pack_name.in_(sorted(visible_packs)))
    return query


def check_storable(data: dict[str, Any]) -> None:
    """422 naming each field whose value PostgreSQL would refuse, before anything is written."""
    # Keys are the API's field names (the schemas load "pack" as pack_name).
    errors = {("pack" if field == "pack_name" else field): problems
              for field, value in data.items() if (problems := unstorable_errors(value, MAX_JSON_DEPTH))}
    if errors:
        raise ValidationError("The request is not valid.", errors)
