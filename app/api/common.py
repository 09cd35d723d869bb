"""What every resource blueprint shares: the blueprint class, list arguments, pagination."""

from __future__ import annotations

import json
import re
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint as SmorestBlueprint
from sqlalchemy import Select, func, select
from webargs.flaskparser import FlaskParser

from app.db import db
from app.errors import ValidationError

# Counting more rows than this is not worth the time; X-Pagination says the total is a floor.
COUNT_CAP = 10_000


class CappedCount(int):
    capped: bool = False


# OFFSET is a bigint in PostgreSQL; a page beyond it is simply past the end.
MAX_OFFSET = 2**62


class ArgumentsParser(FlaskParser):
    """webargs' parser, with JSON nested deeper than Python can decode answered as a 400."""

    def _raw_load_json(self, req: Any) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            raise json.JSONDecodeError("The JSON body is nested too deeply.", "nested", 0) from None


class Blueprint(SmorestBlueprint):
    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 20, "max_page_size": 100}
    ARGUMENTS_PARSER = ArgumentsParser()

    @staticmethod
    def _make_pagination_metadata(page, page_size, item_count):
        metadata = SmorestBlueprint._make_pagination_metadata(page, page_size, item_count)
        if getattr(item_count, "capped", False):
            metadata["total_is_lower_bound"] = True
        return metadata


def count_capped(query: Select, cap: int = COUNT_CAP) -> CappedCount:
    """COUNT(*) over at most ``cap + 1`` rows, so a list never scans a huge table to count it."""
    limited = query.order_by(None).limit(cap + 1).subquery()
    total = db.session.scalar(select(func.count()).select_from(limited)) or 0
    count = CappedCount(min(total, cap))
    count.capped = total > cap
    return count


def paginate(query: Select, pagination_parameters: Any) -> list[Any]:
    """Run ``query`` for the requested page and set the item count for X-Pagination."""
    pagination_parameters.item_count = count_capped(query)
    page, size = pagination_parameters.page, pagination_parameters.page_size
    if (page - 1) * size > MAX_OFFSET:
        return []
    return list(db.session.scalars(query.limit(size).offset((page - 1) * size)).unique())


def apply_sort(query: Select, sort: str | None, columns: dict[str, Any], default: str, tiebreak: Any) -> Select:
    """``sort=name`` / ``sort=-created_at``; only the listed (indexed) columns are accepted."""
    spec = sort or default
    descending = spec.startswith("-")
    name = spec.lstrip("-+")
    if name not in columns:
        raise ValidationError(
            "The request is not valid.",
            {"sort": [f"Must be one of: {', '.join(sorted(columns))} (prefix '-' for descending)."]},
        )
    column = columns[name]
    return query.order_by(column.desc() if descending else column.asc(),
                          tiebreak.desc() if descending else tiebreak.asc())


def like_pattern(text: str) -> str:
    """A substring pattern for ILIKE with the user's wildcards escaped."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


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


class Ref(ma.fields.String):
    """``<pack>.<name>``."""


# \Z, not $: "$" also matches before a trailing newline, which would let "name\n" through.
REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+\Z")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
PACK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}\Z")

name_field_validators = [ma.validate.Regexp(NAME_PATTERN, error="Use letters, digits, '_', '-' and '.' (max 128).")]
pack_name_validators = [ma.validate.Regexp(PACK_NAME_PATTERN, error="Use letters, digits, '_' and '-' (max 128).")]
