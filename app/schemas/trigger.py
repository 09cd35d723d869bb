from __future__ import annotations

import marshmallow as ma

from app.schemas.common import ContentSchema, StrictSchema


class TriggerSchema(ContentSchema):
    parameters_schema = ma.fields.Dict(metadata={"description": "JSON Schema a rule's trigger_parameters must match"})
    payload_schema = ma.fields.Dict(metadata={"description": "JSON Schema of an event's payload"})


class TriggerUpdateSchema(StrictSchema):
    description = ma.fields.String(validate=ma.validate.Length(max=10_000))
    tags = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=128)), validate=ma.validate.Length(max=50))
    parameters_schema = ma.fields.Dict()
    payload_schema = ma.fields.Dict()
