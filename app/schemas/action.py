from __future__ import annotations

import marshmallow as ma

from app.engine.content_checks import MAX_PATH, action_problems
from app.engine.runner_types import MAX_TIMEOUT, RUNNER_TYPES
from app.schemas.common import ContentSchema, ContentUpdateSchema


def runner_type_field(**kwargs: object) -> ma.fields.String:
    return ma.fields.String(metadata={"enum": list(RUNNER_TYPES)}, **kwargs)


def timeout_field() -> ma.fields.Integer:
    return ma.fields.Integer(strict=True, allow_none=True, metadata={"minimum": 1, "maximum": MAX_TIMEOUT})


class ActionSchema(ContentSchema):
    content_check = action_problems

    enabled = ma.fields.Boolean(load_default=True)
    runner_type = runner_type_field(required=True)
    entry_point = ma.fields.String(metadata={"maxLength": MAX_PATH})
    parameters = ma.fields.Dict(keys=ma.fields.String(), metadata={
        "description": "{name: JSON Schema property + required/default/secret/immutable/position}"})
    output_schema = ma.fields.Dict()
    timeout = timeout_field()
    retry = ma.fields.Dict(metadata={"description": "{retries, delay, on: [failed, timeout, abandoned]}"})


class ActionUpdateSchema(ContentUpdateSchema):
    content_check = action_problems

    enabled = ma.fields.Boolean()
    runner_type = runner_type_field()
    entry_point = ma.fields.String(metadata={"maxLength": MAX_PATH})
    parameters = ma.fields.Dict(keys=ma.fields.String())
    output_schema = ma.fields.Dict()
    timeout = timeout_field()
    retry = ma.fields.Dict()
