"""Shapes and checks shared by the API's schemas: list arguments, name patterns."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma


def no_nul(value: str) -> None:
    """PostgreSQL text cannot hold NUL, so a filter containing one is refused up front."""
    if "\x00" in value:
        raise ma.ValidationError("Must not contain NUL characters.")


def filter_string(max_length: int) -> list[Any]:
    return [ma.validate.Length(max=max_length), no_nul]


class ListArgs(ma.Schema):
    sort = ma.fields.String(validate=ma.validate.Length(max=64),
                            metadata={"description": "field to sort by; prefix '-' for descending"})
    q = ma.fields.String(validate=filter_string(200), metadata={"description": "name contains (case-insensitive)"})


class ContentListArgs(ListArgs):
    pack = ma.fields.String(validate=filter_string(128), metadata={"description": "pack name"})


class ContentListWithEnabledArgs(ContentListArgs):
    enabled = ma.fields.Boolean()


# \Z, not $: "$" also matches before a trailing newline, which would let "name\n" through.
REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+\Z")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
PACK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}\Z")

name_field_validators = [ma.validate.Regexp(NAME_PATTERN, error="Use letters, digits, '_', '-' and '.' (max 128).")]
pack_name_validators = [ma.validate.Regexp(PACK_NAME_PATTERN, error="Use letters, digits, '_' and '-' (max 128).")]



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
