from __future__ import annotations

import marshmallow as ma

from app.schemas.common import ListArgs, StrictSchema, pack_name_validators
from app.schemas.identity import role_name_validators


class GrantSchema(StrictSchema):
    permission = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    pack = ma.fields.String(load_default=None, allow_none=True, validate=pack_name_validators,
                            metadata={"description": "scope the grant to one pack (pack-scopable permissions only)"})


class RoleSchema(StrictSchema):
    id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=role_name_validators)
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=10_000))
    builtin = ma.fields.Boolean(dump_only=True)
    grants = ma.fields.List(ma.fields.Nested(GrantSchema), load_default=list, validate=ma.validate.Length(max=500))
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class RoleUpdateSchema(StrictSchema):
    description = ma.fields.String(required=True, validate=ma.validate.Length(max=10_000))


class RoleListArgs(ListArgs):
    builtin = ma.fields.Boolean()


class GrantQuerySchema(GrantSchema):
    """The grant to remove, in the query string (DELETE has no body)."""


class PermissionInfoSchema(ma.Schema):
    permission = ma.fields.String()
    description = ma.fields.String()
    pack_scopable = ma.fields.Boolean()
