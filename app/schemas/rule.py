from __future__ import annotations

from typing import Any

import marshmallow as ma

from app.engine.content_checks import rule_problems
from app.schemas.common import ContentSchema, ContentUpdateSchema, ref_field_metadata


class RefField(ma.fields.String):
    """A related row, shown as its ref and given as one."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return getattr(value, "ref", value)


TRIGGER_REF = ref_field_metadata("trigger type ref, e.g. core.webhook")
ACTION_REF = ref_field_metadata("action ref, e.g. core.local")


class RuleSchema(ContentSchema):
    content_check = rule_problems

    enabled = ma.fields.Boolean(load_default=True)
    trigger = RefField(required=True, metadata=TRIGGER_REF)
    trigger_parameters = ma.fields.Dict(keys=ma.fields.String(),
                                        metadata={"description": "must match the trigger's parameters_schema"})
    criteria = ma.fields.Dict(keys=ma.fields.String(),
                              metadata={"description": '{"trigger.body.x": {"type": "equals", "pattern": 1}}'})
    action = RefField(required=True, metadata=ACTION_REF)
    action_parameters = ma.fields.Dict(keys=ma.fields.String(),
                                       metadata={"description": "values or Jinja templates for the action's parameters"})
    created_by = ma.fields.String(dump_only=True, allow_none=True,
                                  metadata={"description": "who created the rule; its executions run as them"})
    updated_by = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "who last changed it"})


class RuleUpdateSchema(ContentUpdateSchema):
    content_check = rule_problems

    enabled = ma.fields.Boolean()
    trigger = RefField(metadata=TRIGGER_REF)
    trigger_parameters = ma.fields.Dict(keys=ma.fields.String())
    criteria = ma.fields.Dict(keys=ma.fields.String())
    action = RefField(metadata=ACTION_REF)
    action_parameters = ma.fields.Dict(keys=ma.fields.String())
