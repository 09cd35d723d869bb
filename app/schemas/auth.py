from __future__ import annotations

import marshmallow as ma

from app.schemas.common import StrictSchema
from app.schemas.identity import IdentitySchema, username_validators


class LoginSchema(StrictSchema):
    username = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=255))
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024))


class TokensSchema(ma.Schema):
    access_token = ma.fields.String()
    refresh_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_in = ma.fields.Integer(metadata={"description": "seconds the access token lives"})


class RefreshSchema(StrictSchema):
    refresh_token = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=4096))


class LogoutSchema(StrictSchema):
    refresh_token = ma.fields.String(validate=ma.validate.Length(min=1, max=4096),
                                     metadata={"description": "also revoke this refresh token"})
    everywhere = ma.fields.Boolean(load_default=False,
                                   metadata={"description": "end every session of this identity, on every device"})


class PasswordChangeSchema(StrictSchema):
    old_password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024))
    new_password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024))


class RegisterSchema(StrictSchema):
    username = ma.fields.String(required=True, validate=username_validators)
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024))
    display_name = ma.fields.String(validate=ma.validate.Length(max=255))
    email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=255))


class PermissionGrantSchema(ma.Schema):
    permission = ma.fields.String()
    pack = ma.fields.String(allow_none=True)


class MeSchema(ma.Schema):
    identity = ma.fields.Nested(IdentitySchema)
    roles = ma.fields.List(ma.fields.String())
    permissions = ma.fields.List(ma.fields.Nested(PermissionGrantSchema))
    api_key = ma.fields.String(allow_none=True, metadata={"description": "prefix of the API key used, if any"})


class ApiKeySchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    prefix = ma.fields.String()
    owner = ma.fields.Function(lambda key: key.identity.name)
    permissions = ma.fields.List(ma.fields.String(), allow_none=True,
                                 metadata={"description": "null: the owner's permissions"})
    created_at = ma.fields.DateTime()
    last_used_at = ma.fields.DateTime(allow_none=True)
    expires_at = ma.fields.DateTime(allow_none=True)
    revoked_at = ma.fields.DateTime(allow_none=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = ma.fields.String(metadata={"description": "the key itself: shown this once, stored only hashed"})


class ApiKeyCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=255))
    permissions = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=64)), allow_none=True,
                                 validate=ma.validate.Length(max=100),
                                 metadata={"description": "narrow the key to these of the owner's permissions"})
    expires_at = ma.fields.AwareDateTime(allow_none=True)
    owner = ma.fields.String(validate=ma.validate.Length(max=255),
                             metadata={"description": "another identity's name (needs rbac:manage)"})


class ApiKeyListArgs(ma.Schema):
    owner = ma.fields.String(validate=ma.validate.Length(max=255))
    include_revoked = ma.fields.Boolean(load_default=False)
