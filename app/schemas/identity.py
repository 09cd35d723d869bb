from __future__ import annotations

import re

import marshmallow as ma

from app.schemas.common import ListArgs, StrictSchema

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}\Z")
username_validators = [ma.validate.Regexp(USERNAME_PATTERN, error="Use letters, digits, '_', '-', '.' and '@' (max 128).")]
ROLE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
role_name_validators = [ma.validate.Regexp(ROLE_NAME_PATTERN, error="Use letters, digits, '_', '-' and '.' (max 64).")]
# Lengths only: the password policy (app.services.passwords) explains what else is wrong.
password_field = ma.fields.String(load_only=True, validate=ma.validate.Length(min=1, max=1024))


class IdentitySchema(StrictSchema):
    id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(dump_only=True)
    display_name = ma.fields.String(dump_only=True)
    email = ma.fields.String(dump_only=True, allow_none=True)
    kind = ma.fields.String(dump_only=True, metadata={"description": "user (password login) or service (API keys only)"})
    enabled = ma.fields.Boolean(dump_only=True)
    roles = ma.fields.Function(lambda identity: [role.name for role in identity.roles], dump_only=True)
    has_password = ma.fields.Function(lambda identity: identity.password_hash is not None, dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    last_login_at = ma.fields.DateTime(dump_only=True, allow_none=True)


class IdentityCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=username_validators)
    display_name = ma.fields.String(validate=ma.validate.Length(max=255))
    email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=255))
    kind = ma.fields.String(load_default="user", validate=ma.validate.OneOf(["user", "service"]))
    password = password_field
    roles = ma.fields.List(ma.fields.String(validate=role_name_validators), validate=ma.validate.Length(max=50))


class IdentityUpdateSchema(StrictSchema):
    display_name = ma.fields.String(validate=ma.validate.Length(max=255))
    email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=255))
    password = ma.fields.String(load_only=True, validate=ma.validate.Length(min=1, max=1024),
                                metadata={"description": "sets a new password; the identity's tokens stop working"})


class IdentityListArgs(ListArgs):
    kind = ma.fields.String(validate=ma.validate.OneOf(["user", "service"]))
    enabled = ma.fields.Boolean()
    role = ma.fields.String(validate=role_name_validators)


class RoleAssignSchema(StrictSchema):
    role = ma.fields.String(required=True, validate=role_name_validators)
