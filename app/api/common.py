"""What every resource blueprint shares: the blueprint class, list arguments, pagination."""

from __future__ import annotations

import json
from copy import deepcopy
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint as SmorestBlueprint
from sqlalchemy import Select, func, select
from webargs.flaskparser import FlaskParser

from app.db import db
from app.engine.unstorable import find_unstorable, nested_errors, storable, text_problem
from app.errors import ValidationError

# Counting more rows than this is not worth the time; X-Pagination says the total is a floor.
COUNT_CAP = 10_000


class CappedCount(int):
    capped: bool = False


# OFFSET is a bigint in PostgreSQL; a page beyond it is simply past the end.
MAX_OFFSET = 2**62


class ArgumentsParser(FlaskParser):
    """webargs' parser, with JSON nested deeper than Python can decode answered as a 400, and
    text PostgreSQL cannot store (NUL, unpaired surrogates) refused as a 422 naming the field."""

    def _raw_load_json(self, req: Any) -> Any:
        try:
            data = super()._raw_load_json(req)
        except RecursionError:
            raise json.JSONDecodeError("The JSON body is nested too deeply.", "nested", 0) from None
        found = find_unstorable(data)
        if found:
            raise ma.ValidationError(nested_errors(*found))
        return data

    def load_querystring(self, req: Any, schema: ma.Schema) -> Any:
        for name, value in req.args.items(multi=True):
            problem = text_problem(name) or text_problem(value)
            if problem:
                raise ma.ValidationError({storable(name): [problem]})
        return super().load_querystring(req, schema)


# X-Pagination carries JSON; OpenAPI 3 describes such a header with ``content``, not with
# ``schema`` (which means the "simple" style, ``total,3,page,1``, and misleads clients).
PAGINATION_HEADER_DOC = {
    "description": "Pagination metadata (JSON)",
    "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {
            **{name: {"type": "integer"} for name in (
                "total", "total_pages", "first_page", "last_page", "page", "previous_page", "next_page")},
            "total_is_lower_bound": {"type": "boolean",
                                     "description": f"more than {COUNT_CAP} items; total is a floor"},
        },
    }}},
}


class Blueprint(SmorestBlueprint):
    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 20, "max_page_size": 100}
    ARGUMENTS_PARSER = ArgumentsParser()

    @staticmethod
    def _make_pagination_metadata(page, page_size, item_count):
        metadata = SmorestBlueprint._make_pagination_metadata(page, page_size, item_count)
        if getattr(item_count, "capped", False):
            metadata["total_is_lower_bound"] = True
        return metadata

    def _document_pagination_metadata(self, spec, resp_doc):
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = deepcopy(PAGINATION_HEADER_DOC)

    def add_url_rule(self, rule, endpoint=None, view_func=None, provide_automatic_options=None, **kwargs):
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **kwargs)
        if "<" in rule:
            # Every view with a path parameter loads that object first: document its 404.
            for method, doc in self._docs[self._endpoints[-1]].items():
                if method != "parameters":
                    responses = doc.setdefault("response", {}).setdefault("responses", {})
                    if 404 not in responses and "404" not in responses:
                        responses[404] = ["NOT_FOUND"]


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


def content_sort_columns(model: type) -> dict[str, Any]:
    """The sortable (indexed) columns every kind of pack content has."""
    return {"ref": model.ref, "name": model.name, "pack": model.pack_name,  # type: ignore[attr-defined]
            "created_at": model.created_at, "updated_at": model.updated_at}  # type: ignore[attr-defined]


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
