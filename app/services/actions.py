"""Actions: create, change, delete, and what references them.

The fields themselves are checked when the request is loaded (app/engine/content_checks.py,
the same check pack files get); a change is checked here for what it does to the whole.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import db
from app.engine.content_checks import entry_point_problem
from app.errors import Conflict, ValidationError
from app.models import Action, Rule
from app.services.content import (
    add_content,
    assign,
    check_storable,
    get_by_ref,
    pack_for_new_content,
)

FIELDS = ("description", "enabled", "runner_type", "entry_point", "parameters", "output_schema", "tags", "timeout", "retry")


def get_action(ref: str) -> Action:
    return get_by_ref(Action, ref, "Action")


def create_action(data: dict[str, Any], source_file: str | None = None) -> Action:
    check_storable(data)
    pack = pack_for_new_content(data["pack_name"])
    return add_content(Action, "Action", pack, data, FIELDS, source_file)


def update_action(action: Action, data: dict[str, Any]) -> Action:
    check_storable(data)
    if "runner_type" in data or "entry_point" in data:
        problem = entry_point_problem(data.get("runner_type", action.runner_type),
                                      data.get("entry_point", action.entry_point))
        if problem:
            raise ValidationError("The action is not valid.", {"entry_point": [problem]})
    assign(action, data, FIELDS)
    db.session.flush()
    return action


def rules_using_action(action: Action) -> list[Rule]:
    return list(db.session.scalars(select(Rule).where(Rule.action_id == action.id).order_by(Rule.ref)))


def delete_action(action: Action) -> None:
    users = rules_using_action(action)
    if users:
        raise Conflict(
            f"Action {action.ref!r} is used by {len(users)} rule(s); delete or change them first.",
            {"rules": [r.ref for r in users[:50]]},
        )
    db.session.delete(action)
    db.session.flush()
