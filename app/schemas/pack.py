from __future__ import annotations

from typing import Any

import marshmallow as ma

from app.engine.parameters import MASK, secret_config_keys
from app.schemas.common import StrictSchema, pack_name_validators

VERSION = ma.validate.Regexp(r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}\Z", error="Use a version such as 1.2.0 (max 64).")


def keywords_field() -> ma.fields.List:
    return ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=128)), validate=ma.validate.Length(max=50))


def email_or_empty(value: str) -> None:
    if value:
        ma.validate.Email(error="Must be an email address.")(value)


class PackSchema(StrictSchema):
    id = ma.fields.Integer(dump_only=True)
    ref = ma.fields.String(dump_only=True)
    name = ma.fields.String(required=True, validate=pack_name_validators)
    version = ma.fields.String(validate=VERSION)
    description = ma.fields.String(validate=ma.validate.Length(max=10_000))
    author = ma.fields.String(validate=ma.validate.Length(max=255))
    email = ma.fields.String(validate=[ma.validate.Length(max=255), email_or_empty])
    keywords = keywords_field()
    config_schema = ma.fields.Dict(metadata={
        "description": "the config's schema: StackStorm's {key: {type, required, secret, ...}} or a "
                       "JSON Schema object; keys marked secret: true are masked"})
    config = ma.fields.Dict(metadata={"description": "the pack's config; must match config_schema"})
    path = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "directory it was registered from; null via the API"})
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)

    @ma.post_dump(pass_original=True)
    def mask_secrets(self, data: dict[str, Any], original: Any, **kwargs: Any) -> dict[str, Any]:
        secret = secret_config_keys(getattr(original, "config_schema", None))
        if "config" in data and secret:
            data["config"] = {k: (MASK if k in secret and v is not None else v) for k, v in data["config"].items()}
        return data


class PackUpdateSchema(StrictSchema):
    version = ma.fields.String(validate=VERSION)
    description = ma.fields.String(validate=ma.validate.Length(max=10_000))
    author = ma.fields.String(validate=ma.validate.Length(max=255))
    email = ma.fields.String(validate=[ma.validate.Length(max=255), email_or_empty])
    keywords = keywords_field()
    config_schema = ma.fields.Dict()
    config = ma.fields.Dict()


class PackConfigSchema(StrictSchema):
    """``GET/PUT /packs/<name>/config``: the configuration alone."""

    pack = ma.fields.String(dump_only=True, metadata={"description": "the pack's name"})
    config = ma.fields.Dict(keys=ma.fields.String(), required=True, metadata={
        "description": "the pack's config; must match its config_schema; secrets read as ********"})
