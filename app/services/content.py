"""Helpers shared by the services of pack content (actions, triggers, sensors, rules)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select

from app.db import db
from app.engine.search import like_pattern
from app.errors import Conflict, NotFound, ValidationError
from app.models import Pack

T = TypeVar("T")

# Deeper JSON than this is never a sensible definition, and deep enough to exhaust the stack
# of the JSON Schema validator.
MAX_JSON_DEPTH = 32


def get_by_ref(model: type[T], ref: str, label: str) -> T:
    # PostgreSQL cannot compare text with NUL in it; no stored ref holds one anyway.
    item = None if "\x00" in ref else db.session.scalar(select(model).where(model.ref == ref))  # type: ignore[attr-defined]
    if item is None:
        raise NotFound(f"{label} {ref!r} does not exist.")
    return item


def pack_for_new_content(pack_name: str) -> Pack:
    pack = db.session.scalar(select(Pack).where(Pack.name == pack_name))
    if pack is None:
        raise ValidationError("The request is not valid.", {"pack": [f"Pack {pack_name!r} does not exist."]})
    return pack


def ensure_ref_free(model: type, ref: str, label: str) -> None:
    if db.session.scalar(select(model.id).where(model.ref == ref)) is not None:
        raise Conflict(f"{label} {ref!r} already exists.", {"ref": [f"{ref!r} is taken."]})


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


def check_relative_path(value: str, field: str) -> None:
    """Entry points are files inside the pack: relative, no '..', no NUL."""
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "~")) or ".." in parts or "\x00" in value:
        raise ValidationError("The request is not valid.", {field: ["Must be a path inside the pack (relative, without '..')."]})


def storable_errors(value: Any) -> list[str]:
    """Why PostgreSQL could not store ``value`` as given (NUL, lone surrogates, deep nesting)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:  # iterative: the input may be nested deeper than Python recursion allows
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return [f"Nested deeper than {MAX_JSON_DEPTH} levels."]
        if isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return ["Must not contain NUL characters."]
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return ["Must be valid Unicode (no unpaired surrogates)."]
    return []


def check_storable(data: dict[str, Any]) -> None:
    """422 naming each field whose value PostgreSQL would refuse, before anything is written."""
    # Keys are the API's field names (the schemas load "pack" as pack_name).
    errors = {("pack" if field == "pack_name" else field): problems
              for field, value in data.items() if (problems := storable_errors(value))}
    if errors:
        raise ValidationError("The request is not valid.", errors)
