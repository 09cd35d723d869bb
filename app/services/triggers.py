"""Trigger types: create, change, delete, and what references them.

The fields are checked when the request is loaded (app/engine/content_checks.py, the same
check pack files get).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import array

from app.db import db
from app.errors import Conflict
from app.models import Rule, Sensor, Trigger
from app.services.content import (
    add_content,
    assign,
    check_storable,
    get_by_ref,
    pack_for_new_content,
)

FIELDS = ("description", "tags", "parameters_schema", "payload_schema")


def get_trigger(ref: str) -> Trigger:
    return get_by_ref(Trigger, ref, "Trigger")


def create_trigger(data: dict[str, Any], source_file: str | None = None) -> Trigger:
    check_storable(data)
    pack = pack_for_new_content(data["pack_name"])
    return add_content(Trigger, "Trigger", pack, data, FIELDS, source_file)


def update_trigger(trigger: Trigger, data: dict[str, Any]) -> Trigger:
    """Change fields; rules already using the trigger are not re-checked against a new schema."""
    check_storable(data)
    assign(trigger, data, FIELDS)
    db.session.flush()
    return trigger


def dependents(trigger: Trigger) -> dict[str, list[str]]:
    """Refs of the rules on this trigger and the sensors that emit it (50 of each at most)."""
    rules = db.session.scalars(select(Rule.ref).where(Rule.trigger_id == trigger.id).order_by(Rule.ref).limit(50))
    sensors = db.session.scalars(
        select(Sensor.ref).where(Sensor.trigger_types.has_any(array([trigger.ref]))).order_by(Sensor.ref).limit(50)
    )
    found = {"rules": list(rules), "sensors": list(sensors)}
    return {kind: refs for kind, refs in found.items() if refs}


def delete_trigger(trigger: Trigger) -> None:
    users = dependents(trigger)
    if users:
        names = ", ".join(ref for refs in users.values() for ref in refs)
        raise Conflict(f"Trigger {trigger.ref!r} is still used by: {names}; delete or change them first.", users)
    db.session.delete(trigger)
    db.session.flush()
