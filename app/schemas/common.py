"""Shapes shared by the API's schemas: list arguments, and the base of the content schemas."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import marshmallow as ma

from app.engine.content_checks import (
    MAX_DESCRIPTION,
    MAX_REF,
    MAX_TAG,
    MAX_TAGS,
    NAME_PATTERN,
    PACK_NAME_MESSAGE,
    PACK_NAME_PATTERN,
    REF_PATTERN,
)


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


# The name patterns' one home is app/engine/content_checks.py (pack files use them too).
pack_name_validators = [ma.validate.Regexp(PACK_NAME_PATTERN, error=PACK_NAME_MESSAGE)]


class StrictSchema(ma.Schema):
    """Rejects unknown fields, so a typo is a 422 rather than silently ignored."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class CheckedSchema(StrictSchema):
    """Loads a kind of pack content only when its engine check finds nothing wrong: the check
    pack registration makes of the same fields, so both name a problem alike.

    The fields below declare types (and document them); what a value must be is the
    check's. Unknown fields are named along with the check's problems.
    """

    content_check: ClassVar[Callable[..., dict[str, Any]]]
    partial_check: ClassVar[bool] = False

    @ma.pre_load
    def check_content(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # marshmallow answers "Invalid input type."
        problems = {key: ["Unknown field."] for key in data if key not in self.load_fields}
        problems.update(type(self).content_check(data, partial=self.partial_check))
        if problems:
            raise ma.ValidationError(problems)
        return data


def tags_field(**kwargs: Any) -> ma.fields.List:
    return ma.fields.List(ma.fields.String(metadata={"maxLength": MAX_TAG}), metadata={"maxItems": MAX_TAGS},
                          **kwargs)


def description_field() -> ma.fields.String:
    return ma.fields.String(metadata={"maxLength": MAX_DESCRIPTION})


def ref_field_metadata(description: str) -> dict[str, Any]:
    return {"description": description, "pattern": REF_PATTERN.pattern, "maxLength": MAX_REF}


class ContentSchema(CheckedSchema):
    id = ma.fields.Integer(dump_only=True)
    ref = ma.fields.String(dump_only=True)
    pack = ma.fields.String(required=True, attribute="pack_name", metadata={"pattern": PACK_NAME_PATTERN.pattern})
    name = ma.fields.String(required=True, metadata={"pattern": NAME_PATTERN.pattern})
    description = description_field()
    tags = tags_field()
    source_file = ma.fields.String(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class ContentUpdateSchema(CheckedSchema):
    partial_check = True

    description = description_field()
    tags = tags_field()
