"""Lists of rules shared by the rules route and the relationship routes (a trigger's rules,
an action's rules), so all of them filter and sort the same way."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from app.api.common import apply_sort, content_sort_columns, paginate
from app.models import Rule
from app.security import current_principal
from app.services.content import filter_content

SORTABLE = content_sort_columns(Rule)


def related_rules(condition: ColumnElement[bool], args: dict[str, Any], pagination_parameters: Any) -> list[Rule]:
    """One page of the rules matching ``condition`` that the caller may view (``rules:view``
    on their packs), filtered by ``pack``, ``enabled`` and ``q`` and sorted by ``sort``."""
    query = filter_content(select(Rule).where(condition), Rule, args, current_principal().packs_for("rules:view"))
    query = apply_sort(query, args.get("sort"), SORTABLE, "ref", Rule.id)
    return paginate(query, pagination_parameters)
