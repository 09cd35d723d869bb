from __future__ import annotations

import marshmallow as ma

from app.engine.runner_types import RUNNER_TYPES
from app.schemas.common import ContentSchema, StrictSchema


class ActionSchema(ContentSchema):
    enabled = ma.fields.Boolean(load_default=True)
    runner_type = ma.fields.String(required=True, validate=ma.validate.OneOf(RUNNER_TYPES))
    entry_point = ma.fields.String(validate=ma.validate.Length(max=1024))
    parameters = ma.fields.Dict(keys=ma.fields.String(), metadata={
        "description": "{name: JSON Schema property + required/default/secret/immutable/position}"})
    output_schema = ma.fields.Dict()
    timeout = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=1, max=7 * 24 * 3600))
    retry = ma.fields.Dict(metadata={"description": "{retries, delay, on: [failed, timeout, abandoned]}"})


class ActionUpdateSchema(StrictSchema):
    description = ma.fields.String(validate=ma.validate.Length(max=10_000))
    tags = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=128)), validate=ma.validate.Length(max=50))
    enabled = ma.fields.Boolean()
    runner_type = ma.fields.String(validate=ma.validate.OneOf(RUNNER_TYPES))
    entry_point = ma.fields.String(validate=ma.validate.Length(max=1024))
    parameters = ma.fields.Dict(keys=ma.fields.String())
    output_schema = ma.fields.Dict()
    timeout = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=1, max=7 * 24 * 3600))
    retry = ma.fields.Dict()
