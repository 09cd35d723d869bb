from __future__ import annotations

import marshmallow as ma

from app.schemas.common import ContentSchema, StrictSchema


class RuleSchema(ContentSchema):
    enabled = ma.fields.Boolean(load_default=True)
    trigger = ma.fields.String(required=True, attribute="trigger_ref_in",
                               metadata={"description": "trigger type ref, e.g. core.webhook"})
    trigger_parameters = ma.fields.Dict(keys=ma.fields.String())
    criteria = ma.fields.Dict(keys=ma.fields.String(),
                              metadata={"description": '{"trigger.body.x": {"type": "equals", "pattern": 1}}'})
    action = ma.fields.String(required=True, attribute="action_ref_in",
                              metadata={"description": "action ref, e.g. core.local"})
    action_parameters = ma.fields.Dict(keys=ma.fields.String())

    @ma.post_dump(pass_original=True)
    def refs(self, data, original, **kwargs):
        data["trigger"] = original.trigger.ref
        data["action"] = original.action.ref
        return data


class RuleUpdateSchema(StrictSchema):
    description = ma.fields.String(validate=ma.validate.Length(max=10_000))
    tags = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=128)), validate=ma.validate.Length(max=50))
    enabled = ma.fields.Boolean()
    trigger = ma.fields.String(attribute="trigger_ref_in")
    trigger_parameters = ma.fields.Dict(keys=ma.fields.String())
    criteria = ma.fields.Dict(keys=ma.fields.String())
    action = ma.fields.String(attribute="action_ref_in")
    action_parameters = ma.fields.Dict(keys=ma.fields.String())
