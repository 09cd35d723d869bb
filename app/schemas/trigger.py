from __future__ import annotations

import marshmallow as ma

from app.engine.content_checks import trigger_problems
from app.schemas.common import ContentSchema, ContentUpdateSchema


class TriggerSchema(ContentSchema):
    content_check = trigger_problems

    parameters_schema = ma.fields.Dict(metadata={"description": "JSON Schema a rule's trigger_parameters must match"})
    payload_schema = ma.fields.Dict(metadata={"description": "JSON Schema of an event's payload"})


class TriggerUpdateSchema(ContentUpdateSchema):
    content_check = trigger_problems

    parameters_schema = ma.fields.Dict()
    payload_schema = ma.fields.Dict()
