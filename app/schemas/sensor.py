from __future__ import annotations

import marshmallow as ma

from app.engine.content_checks import (
    CLASS_NAME_PATTERN,
    MAX_PATH,
    MAX_POLL_INTERVAL,
    MAX_TRIGGER_TYPES,
    sensor_problems,
)
from app.schemas.common import ContentSchema, ContentUpdateSchema, ref_field_metadata

CLASS_NAME = {"pattern": CLASS_NAME_PATTERN.pattern}
ENTRY_POINT = {"minLength": 1, "maxLength": MAX_PATH}
POLL_INTERVAL = {"minimum": 1, "maximum": MAX_POLL_INTERVAL}


def trigger_types_field(**metadata: str) -> ma.fields.List:
    return ma.fields.List(ma.fields.String(metadata=ref_field_metadata("trigger type ref")),
                          metadata={"maxItems": MAX_TRIGGER_TYPES, **metadata})


class SensorSchema(ContentSchema):
    content_check = sensor_problems

    enabled = ma.fields.Boolean(load_default=True)
    class_name = ma.fields.String(required=True, metadata=CLASS_NAME)
    entry_point = ma.fields.String(required=True, metadata={
        **ENTRY_POINT, "description": "Python file inside the pack, e.g. sensors/poll.py"})
    poll_interval = ma.fields.Integer(strict=True, allow_none=True, metadata={
        **POLL_INTERVAL, "description": "seconds between polls; null for none"})
    trigger_types = trigger_types_field(description="refs of the triggers this sensor emits")
    last_polled_at = ma.fields.DateTime(dump_only=True, allow_none=True)


class SensorUpdateSchema(ContentUpdateSchema):
    content_check = sensor_problems

    enabled = ma.fields.Boolean()
    class_name = ma.fields.String(metadata=CLASS_NAME)
    entry_point = ma.fields.String(metadata=ENTRY_POINT)
    poll_interval = ma.fields.Integer(strict=True, allow_none=True, metadata=POLL_INTERVAL)
    trigger_types = trigger_types_field()
