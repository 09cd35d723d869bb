"""Sensors: create, change, enable/disable, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import db
from app.errors import ValidationError
from app.models import Sensor, Trigger
from app.services.content import (
    add_content,
    assign,
    check_relative_path,
    check_storable,
    get_by_ref,
    pack_for_new_content,
)

FIELDS = ("description", "tags", "enabled", "class_name", "entry_point", "poll_interval", "trigger_types")


def get_sensor(ref: str) -> Sensor:
    return get_by_ref(Sensor, ref, "Sensor")


def validate_sensor_fields(data: dict[str, Any]) -> None:
    if "entry_point" in data:
        check_relative_path(data["entry_point"], "entry_point")
    refs = data.get("trigger_types")
    if refs is None:
        return
    duplicates = sorted({ref for ref in refs if refs.count(ref) > 1})
    if duplicates:
        raise ValidationError("The sensor is not valid.", {"trigger_types": [f"Listed twice: {', '.join(duplicates)}."]})
    known = set(db.session.scalars(select(Trigger.ref).where(Trigger.ref.in_(refs)))) if refs else set()
    missing = [ref for ref in refs if ref not in known]
    if missing:
        raise ValidationError("The sensor is not valid.",
                              {"trigger_types": [f"Trigger {ref!r} does not exist." for ref in missing]})


def create_sensor(data: dict[str, Any], source_file: str | None = None) -> Sensor:
    check_storable(data)
    pack = pack_for_new_content(data["pack_name"])
    validate_sensor_fields(data)
    return add_content(Sensor, "Sensor", pack, data, FIELDS, source_file)


def update_sensor(sensor: Sensor, data: dict[str, Any]) -> Sensor:
    check_storable(data)
    validate_sensor_fields(data)
    assign(sensor, data, FIELDS)
    db.session.flush()
    return sensor


def set_enabled(sensor: Sensor, enabled: bool) -> Sensor:
    sensor.enabled = enabled
    db.session.flush()
    return sensor


def delete_sensor(sensor: Sensor) -> None:
    db.session.delete(sensor)
    db.session.flush()
