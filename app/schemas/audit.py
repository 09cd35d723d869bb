from __future__ import annotations

import marshmallow as ma

from app.schemas.common import StrictSchema


class AuditEntrySchema(StrictSchema):
    id = ma.fields.Integer(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    actor = ma.fields.String(dump_only=True, allow_none=True)
    action = ma.fields.String(dump_only=True, metadata={"description": "the permission the call needed"})
    resource_type = ma.fields.String(dump_only=True)
    resource = ma.fields.String(attribute="resource_ref", dump_only=True, allow_none=True)
    outcome = ma.fields.String(dump_only=True, metadata={"description": "success, failure or denied"})
    status_code = ma.fields.Integer(dump_only=True, allow_none=True)
    request_id = ma.fields.String(dump_only=True, allow_none=True)
    remote_addr = ma.fields.String(dump_only=True, allow_none=True)
    details = ma.fields.Dict(dump_only=True)


class AuditListArgs(ma.Schema):
    actor = ma.fields.String(validate=ma.validate.Length(max=255))
    resource_type = ma.fields.String(validate=ma.validate.Length(max=64))
    resource = ma.fields.String(validate=ma.validate.Length(max=512))
    action = ma.fields.String(validate=ma.validate.Length(max=128))
    outcome = ma.fields.String(validate=ma.validate.OneOf(["success", "failure", "denied"]))
    request_id = ma.fields.String(validate=ma.validate.Length(max=64))
    since = ma.fields.AwareDateTime(metadata={"description": "entries at or after (ISO 8601 with offset)"})
    until = ma.fields.AwareDateTime(metadata={"description": "entries before (ISO 8601 with offset)"})
