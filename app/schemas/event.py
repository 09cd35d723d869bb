"""Event and enforcement API shapes, and the rule tester's request and answer."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma

from app.db import BIGINT_MAX
from app.models.event import ENFORCEMENT_STATUSES, EVENT_STATUSES
from app.schemas.common import StrictSchema, filter_string

_ID = ma.validate.Range(min=1, max=BIGINT_MAX)


class EventCreateSchema(StrictSchema):
    trigger = ma.fields.String(required=True, validate=filter_string(257),
                               metadata={"description": "trigger type ref (StackStorm names accepted)"})
    payload = ma.fields.Raw(load_default=dict, metadata={"description": "checked against the trigger's payload_schema"})


class EventCreatedSchema(ma.Schema):
    id = ma.fields.Integer()
    trigger = ma.fields.String(attribute="trigger_ref")
    status = ma.fields.String()


class EnforcementSchema(ma.Schema):
    class Meta:
        ordered = True

    id = ma.fields.Integer()
    event_id = ma.fields.Integer(allow_none=True, metadata={"description": "null once the event was purged"})
    rule = ma.fields.String(attribute="rule_ref")
    rule_id = ma.fields.Integer(allow_none=True)
    pack = ma.fields.String(attribute="pack_name")
    status = ma.fields.String(metadata={"description": "succeeded (an execution was requested) or failed"})
    failure_reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()


class EnforcementExecutionSchema(ma.Schema):
    class Meta:
        ordered = True

    id = ma.fields.Integer()
    action = ma.fields.String(attribute="action_ref")
    status = ma.fields.String()
    user = ma.fields.String(allow_none=True)


class EnforcementDetailSchema(EnforcementSchema):
    execution = ma.fields.Nested(EnforcementExecutionSchema, allow_none=True)


class EventSchema(ma.Schema):
    class Meta:
        ordered = True

    id = ma.fields.Integer()
    trigger = ma.fields.String(attribute="trigger_ref")
    pack = ma.fields.String(attribute="pack_name")
    source = ma.fields.String()
    status = ma.fields.String()
    error = ma.fields.String(allow_none=True)
    payload = ma.fields.Raw()
    request_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    claimed_at = ma.fields.DateTime(allow_none=True)
    processed_at = ma.fields.DateTime(allow_none=True)


class EventDetailSchema(EventSchema):
    enforcements = ma.fields.List(ma.fields.Nested(EnforcementSchema))


class _TimeRange(ma.Schema):
    since = ma.fields.AwareDateTime(default_timezone=UTC, metadata={"description": "created at or after (ISO 8601)"})
    until = ma.fields.AwareDateTime(default_timezone=UTC, metadata={"description": "created before (ISO 8601)"})
    sort = ma.fields.String(metadata={"description": "created_at or id; prefix '-' for descending (default -created_at)"})


class EventListArgs(_TimeRange):
    trigger = ma.fields.String(validate=filter_string(257), metadata={"description": "trigger ref"})
    source = ma.fields.String(validate=filter_string(255), metadata={"description": "e.g. api, webhook:<url>"})
    status = ma.fields.String(validate=ma.validate.OneOf(EVENT_STATUSES))


class EnforcementListArgs(_TimeRange):
    rule = ma.fields.String(validate=filter_string(257), metadata={"description": "rule ref"})
    event = ma.fields.Integer(validate=_ID, metadata={"description": "event id"})
    status = ma.fields.String(validate=ma.validate.OneOf(ENFORCEMENT_STATUSES))


class RuleTestSchema(StrictSchema):
    payload = ma.fields.Raw(metadata={"description": "an event payload to test the rule against"})
    event = ma.fields.Integer(validate=_ID, metadata={"description": "or the id of a recorded event"})

    @ma.validates_schema
    def one_of(self, data, **kwargs):
        if ("payload" in data) == ("event" in data):
            raise ma.ValidationError("Give either 'payload' or 'event'.", "_schema")


class RuleTestResultSchema(ma.Schema):
    class Meta:
        ordered = True

    rule = ma.fields.String()
    enabled = ma.fields.Boolean()
    matched = ma.fields.Boolean(metadata={"description": "whether the rule would fire"})
    event = ma.fields.Integer()
    trigger_matches = ma.fields.Boolean(metadata={"description": "the event is of the rule's trigger"})
    trigger_parameters_match = ma.fields.Boolean(
        metadata={"description": "the event is for this rule's trigger parameters (its webhook url, its timer)"})
    criteria = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "each criterion: path, found, value, operator, pattern, matched, reason, nested checks"})
    parameters = ma.fields.Dict(allow_none=True, metadata={"description": "what the action would get; secrets masked"})
    parameters_error = ma.fields.String()
