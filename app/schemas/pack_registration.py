"""Shapes of ``POST /api/v1/packs/register``."""

from __future__ import annotations

import marshmallow as ma

from app.schemas.common import StrictSchema


class PackRegisterSchema(StrictSchema):
    packs = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=1024)),
        validate=ma.validate.Length(min=1, max=100),
        metadata={"description": "pack directory names or paths relative to PACKS_PATH, e.g. "
                                 '["core", "acme"]; omit the field to register every pack in PACKS_PATH'},
    )


class ContentCountsSchema(ma.Schema):
    created = ma.fields.Integer()
    updated = ma.fields.Integer(metadata={"description": "existed and some field changed (same id)"})
    unchanged = ma.fields.Integer()
    removed = ma.fields.Integer(metadata={"description": "its file is gone from the pack"})


class PackRegistrationSchema(ma.Schema):
    pack = ma.fields.String(metadata={"description": "pack name (from pack.yaml)"})
    path = ma.fields.String(metadata={"description": "directory relative to PACKS_PATH"})
    version = ma.fields.String()
    pack_created = ma.fields.Boolean(metadata={"description": "the pack was not registered before"})
    actions = ma.fields.Nested(ContentCountsSchema)
    triggers = ma.fields.Nested(ContentCountsSchema)
    sensors = ma.fields.Nested(ContentCountsSchema)
    rules = ma.fields.Nested(ContentCountsSchema)


class PackRegisterResultSchema(ma.Schema):
    packs = ma.fields.List(ma.fields.Nested(PackRegistrationSchema))
