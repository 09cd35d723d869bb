from __future__ import annotations

import marshmallow as ma

from app.api.common import name_field_validators, pack_name_validators


class StrictSchema(ma.Schema):
    """Rejects unknown fields, so a typo is a 422 rather than silently ignored."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class ContentSchema(StrictSchema):
    id = ma.fields.Integer(dump_only=True)
    ref = ma.fields.String(dump_only=True)
    pack = ma.fields.String(required=True, attribute="pack_name", validate=pack_name_validators)
    name = ma.fields.String(required=True, validate=name_field_validators)
    description = ma.fields.String(validate=ma.validate.Length(max=10_000))
    tags = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=128)), validate=ma.validate.Length(max=50))
    source_file = ma.fields.String(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)
