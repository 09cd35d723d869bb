from __future__ import annotations

from typing import Any

import marshmallow as ma

from app.schemas.common import REF_PATTERN, ContentSchema, StrictSchema

ref_validators = [ma.validate.Length(max=257), ma.validate.Regexp(REF_PATTERN, error="Must be a ref '<pack>.<name>'.")]


class RefField(ma.fields.String):
    """A related row, shown as its ref and given as one."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return getattr(value, "ref", value)


class RuleSchema(ContentSchema):
    enabled = ma.fields.Boolean(load_default=True)
    trigger = RefField(required=True, validate=ref_validators,
                       metadata={"description": "trigger type ref, e.g. core.webhook"})
    trigger_parameters = ma.fields.Dict(keys=ma.fields.String(),
                                        metadata={"description": "must match the trigger's parameters_schema"})
    criteria = ma.fields.Dict(keys=ma.fields.String(),
                              metadata={"description": '{"trigger.body.x": {"type": "equals", "pattern": 1}}'})
    action = RefField(required=True, validate=ref_validators, metadata={"description": "action ref, e.g. core.local"})
    action_parameters = ma.fields.Dict(keys=ma.fields.String(),
                                       metadata={"description": "values or Jinja templates for the action's parameters"})
    created_by = ma.fields.String(dump_only=True, allow_none=True,
                                  metadata={"description": "who created the rule; its executions run as them"})
    updated_by = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "who last changed it"})


class RuleUpdateSchema(StrictSchema):
    description = ma.fields.String(validate=ma.validate.Length(max=10_000))
    tags = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=128)), validate=ma.validate.Length(max=50))
    enabled = ma.fields.Boolean()
    trigger = RefField(validate=ref_validators)
    trigger_parameters = ma.fields.Dict(keys=ma.fields.String())
    criteria = ma.fields.Dict(keys=ma.fields.String())
    action = RefField(validate=ref_validators)
    action_parameters = ma.fields.Dict(keys=ma.fields.String())
