from __future__ import annotations

import marshmallow as ma

from app.schemas.common import StrictSchema, filter_string

OUTCOMES = ["accepted", "replayed", "unauthorized", "forbidden", "too_large", "rate_limited", "in_progress",
            "invalid"]


class WebhookAcceptedSchema(StrictSchema):
    event_id = ma.fields.Integer(dump_only=True, metadata={"description": "the event the request became"})
    url = ma.fields.String(dump_only=True)
    replayed = ma.fields.Boolean(dump_only=True,
                                 metadata={"description": "true when the delivery id was seen before: nothing new was created"})


class RateLimitSchema(StrictSchema):
    requests = ma.fields.Integer(dump_only=True)
    per_seconds = ma.fields.Integer(dump_only=True)


class WebhookSchema(StrictSchema):
    url = ma.fields.String(dump_only=True)
    auth = ma.fields.String(dump_only=True, metadata={"description": "patchbay, signature or token"})
    secret_key = ma.fields.String(dump_only=True, allow_none=True,
                                  metadata={"description": "the name of the secret (never its value)"})
    token_header = ma.fields.String(dump_only=True, allow_none=True)
    max_body_bytes = ma.fields.Integer(dump_only=True, allow_none=True)
    allowed_cidrs = ma.fields.List(ma.fields.String(), dump_only=True)
    rate_limit = ma.fields.Nested(RateLimitSchema, dump_only=True, allow_none=True)
    rules = ma.fields.List(ma.fields.String(), dump_only=True, metadata={"description": "refs of the enabled rules"})
    packs = ma.fields.List(ma.fields.String(), dump_only=True)


class WebhookListArgs(ma.Schema):
    url = ma.fields.String(validate=filter_string(512), metadata={"description": "url starts with"})


class WebhookRequestSchema(StrictSchema):
    id = ma.fields.Integer(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    url = ma.fields.String(dump_only=True)
    source_address = ma.fields.String(dump_only=True)
    outcome = ma.fields.String(dump_only=True, metadata={"description": ", ".join(OUTCOMES)})
    status_code = ma.fields.Integer(dump_only=True)
    detail = ma.fields.String(dump_only=True, allow_none=True)
    event_id = ma.fields.Integer(dump_only=True, allow_none=True)
    delivery_id = ma.fields.String(dump_only=True, allow_none=True)
    principal = ma.fields.String(dump_only=True, allow_none=True)
    request_id = ma.fields.String(dump_only=True, allow_none=True)


class WebhookRequestListArgs(ma.Schema):
    url = ma.fields.String(validate=filter_string(512))
    outcome = ma.fields.String(validate=ma.validate.OneOf(OUTCOMES))
    since = ma.fields.AwareDateTime(metadata={"description": "requests at or after (ISO 8601 with offset)"})
    until = ma.fields.AwareDateTime(metadata={"description": "requests before (ISO 8601 with offset)"})
