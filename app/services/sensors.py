"""Sensors: create, change, enable/disable, delete; what beat polls, and the values
(cursors) sensors keep between polls.

The fields are checked when the request is loaded (app/engine/content_checks.py, the same
check pack files get); whether the trigger types exist is checked here.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from app.db import db, utcnow
from app.errors import ValidationError
from app.models import Sensor, SensorValue, Trigger
from app.services.content import (
    add_content,
    assign,
    check_storable,
    get_by_ref,
    missing,
    pack_for_new_content,
)

FIELDS = ("description", "tags", "enabled", "class_name", "entry_point", "poll_interval", "trigger_types")


def get_sensor(ref: str) -> Sensor:
    return get_by_ref(Sensor, ref, "Sensor")


def trigger_type_problems(refs: list[str]) -> list[str]:
    """What is wrong with a sensor's trigger types that only the database knows: those missing."""
    known = set(db.session.scalars(select(Trigger.ref).where(Trigger.ref.in_(refs)))) if refs else set()
    return [missing("Trigger", ref) for ref in refs if ref not in known]


def check_trigger_types(data: dict[str, Any]) -> None:
    problems = trigger_type_problems(data["trigger_types"]) if data.get("trigger_types") else []
    if problems:
        raise ValidationError("The sensor is not valid.", {"trigger_types": problems})


def create_sensor(data: dict[str, Any], source_file: str | None = None) -> Sensor:
    check_storable(data)
    pack = pack_for_new_content(data["pack_name"])
    check_trigger_types(data)
    return add_content(Sensor, "Sensor", pack, data, FIELDS, source_file)


def update_sensor(sensor: Sensor, data: dict[str, Any]) -> Sensor:
    check_storable(data)
    check_trigger_types(data)
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


POLL_SENSOR = "patchbay.poll_sensor"
DEFAULT_POLL_INTERVAL = 60  # seconds, as in StackStorm
MAX_VALUES = 1000           # values one sensor may keep
MAX_VALUE_BYTES = 64 * 1024


def pollable_sensors() -> list[tuple[int, str, int]]:
    """(id, ref, poll interval) of every enabled sensor: what beat polls."""
    rows = db.session.execute(select(Sensor.id, Sensor.ref, Sensor.poll_interval)
                              .where(Sensor.enabled.is_(True)).order_by(Sensor.id))
    return [(id_, ref, interval or DEFAULT_POLL_INTERVAL) for id_, ref, interval in rows]


def sensor_values(sensor_ref: str) -> dict[str, Any]:
    """The values the sensor stored (its cursor), by name."""
    rows = db.session.execute(select(SensorValue.name, SensorValue.value).where(SensorValue.sensor_ref == sensor_ref))
    return dict(rows.all())


def store_values(sensor_ref: str, changes: list[tuple[str, Any]]) -> list[str]:
    """Apply ``(name, value)`` writes in order (``DELETE`` as the value deletes); flush only.

    Returns the problems of the writes that were refused (too large, too many values).
    """
    problems: list[str] = []
    for name, value in changes:
        if value is DELETE:
            db.session.execute(delete(SensorValue).where(SensorValue.sensor_ref == sensor_ref, SensorValue.name == name))
            continue
        if len(name) > 512 or len(json.dumps(value, default=str)) > MAX_VALUE_BYTES:
            problems.append(f"value {name[:80]!r} refused: names are at most 512 characters, values {MAX_VALUE_BYTES} bytes")
            continue
        stored = db.session.scalar(select(func.count()).select_from(SensorValue).where(SensorValue.sensor_ref == sensor_ref))
        exists = db.session.scalar(select(SensorValue.id).where(SensorValue.sensor_ref == sensor_ref, SensorValue.name == name))
        if exists is None and stored >= MAX_VALUES:
            problems.append(f"value {name[:80]!r} refused: a sensor keeps at most {MAX_VALUES} values")
            continue
        db.session.execute(
            insert(SensorValue).values(sensor_ref=sensor_ref, name=name, value=value, updated_at=utcnow())
            .on_conflict_do_update(constraint="uq_sensor_values_sensor_ref_name",
                                   set_={"value": value, "updated_at": utcnow()})
        )
    db.session.flush()
    return problems


DELETE = object()  # the value of a change that deletes the name
