"""Shapes of the key-value store API (the name pattern and limits live in app/engine/key_names.py)."""

from __future__ import annotations

import marshmallow as ma

from app.engine.content_checks import MAX_DESCRIPTION
from app.engine.key_names import KEY_NAME_MESSAGE, KEY_NAME_PATTERN, MAX_KEY_VALUE, MAX_TTL, SCOPES
from app.schemas.common import StrictSchema, filter_string
from app.schemas.identity import username_validators

key_name_validators = [ma.validate.Regexp(KEY_NAME_PATTERN, error=KEY_NAME_MESSAGE)]
scope_field_doc = {"description": "`system` (shared) or `user` (private to its owner); default `system`"}


class KeyValueSchema(StrictSchema):
    """The body of PUT /keys/<name>: the name comes from the path, the scope from ?scope=."""

    value = ma.fields.String(required=True, validate=ma.validate.Length(max=MAX_KEY_VALUE),
                             metadata={"description": f"a string of at most {MAX_KEY_VALUE} characters"})
    secret = ma.fields.Boolean(load_default=False, metadata={"description": "store the value in Vault"})
    ttl = ma.fields.Integer(allow_none=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_TTL),
                            metadata={"description": "seconds until the key expires (gone from every read)"})
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=MAX_DESCRIPTION))


class KeyCreateSchema(KeyValueSchema):
    name = ma.fields.String(required=True, validate=key_name_validators)
    scope = ma.fields.String(load_default="system", validate=ma.validate.OneOf(SCOPES), metadata=scope_field_doc)
    user = ma.fields.String(validate=username_validators,
                            metadata={"description": "owner of a user-scoped key (rbac:manage to name another)"})


class KeyScopeArgs(ma.Schema):
    scope = ma.fields.String(load_default="system", validate=ma.validate.OneOf(SCOPES), metadata=scope_field_doc)
    user = ma.fields.String(validate=filter_string(128),
                            metadata={"description": "owner of the user-scoped key (rbac:manage to name another)"})


class KeyReadArgs(KeyScopeArgs):
    decrypt = ma.fields.Boolean(load_default=False,
                                metadata={"description": "include a secret's value (keys:decrypt, or its owner)"})


class KeyListArgs(ma.Schema):
    scope = ma.fields.String(validate=ma.validate.OneOf(SCOPES),
                             metadata={"description": "only this scope; both when omitted"})
    prefix = ma.fields.String(validate=filter_string(255), metadata={"description": "name starts with"})
    user = ma.fields.String(validate=filter_string(128),
                            metadata={"description": "whose user-scoped keys (rbac:manage to name another)"})


class KeySchema(ma.Schema):
    name = ma.fields.String()
    scope = ma.fields.String()
    user = ma.fields.String(attribute="owner", allow_none=True)
    secret = ma.fields.Boolean()
    encrypted = ma.fields.Function(lambda key: key.secret and getattr(key, "decrypted", None) is None,
                                   metadata={"description": "true when `value` is withheld (a secret not decrypted)"})
    value = ma.fields.Function(lambda key: getattr(key, "decrypted", None) if key.secret else key.value,
                               allow_none=True, metadata={"description": "null for a secret unless decrypted"})
    description = ma.fields.String()
    expires_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
