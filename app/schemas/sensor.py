from __future__ import annotations

import marshmallow as ma

from app.schemas.common import ContentSchema, StrictSchema
from app.schemas.rule import ref_validators

CLASS_NAME = ma.validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,254}\Z", error="Must be a Python class name.")
# Beat polls at most every second; a week is the longest interval that is still "polling".
POLL_INTERVAL = ma.validate.Range(min=1, max=7 * 24 * 3600)
TRIGGER_TYPES = ma.validate.Length(max=50)


class SensorSchema(ContentSchema):
    enabled = ma.fields.Boolean(load_default=True)
    class_name = ma.fields.String(required=True, validate=CLASS_NAME)
    entry_point = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=1024),
                                   metadata={"description": "Python file inside the pack, e.g. sensors/poll.py"})
    poll_interval = ma.fields.Integer(strict=True, allow_none=True, validate=POLL_INTERVAL,
                                      metadata={"description": "seconds between polls; null for none"})
    trigger_types = ma.fields.List(ma.fields.String(validate=ref_validators), validate=TRIGGER_TYPES,
                                   metadata={"description": "refs of the triggers this sensor emits"})
    last_polled_at = ma.fields.DateTime(dump_only=True, allow_none=True)


class SensorUpdateSchema(StrictSchema):
    description = ma.fields.String(validate=ma.validate.Length(max=10_000))
    tags = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=128)), validate=ma.validate.Length(max=50))
    enabled = ma.fields.Boolean()
    class_name = ma.fields.String(validate=CLASS_NAME)
    entry_point = ma.fields.String(validate=ma.validate.Length(min=1, max=1024))
    poll_interval = ma.fields.Integer(strict=True, allow_none=True, validate=POLL_INTERVAL)
    trigger_types = ma.fields.List(ma.fields.String(validate=ref_validators), validate=TRIGGER_TYPES)
