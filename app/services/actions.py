"""Actions: create, change, delete, and what references them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import db
from app.engine.parameters import schema_errors
from app.engine.runner_types import NEEDS_ENTRY_POINT, RUNNER_TYPES
from app.errors import Conflict, ValidationError
from app.models import Action, Rule
from app.services.content import (
    add_content,
    assign,
    check_relative_path,
    check_storable,
    get_by_ref,
    pack_for_new_content,
)

FIELDS = ("description", "enabled", "runner_type", "entry_point", "parameters", "output_schema", "tags", "timeout", "retry")


def get_action(ref: str) -> Action:
    return get_by_ref(Action, ref, "Action")


def validate_action_fields(data: dict[str, Any], runner_type: str, entry_point: str) -> None:
    errors: dict[str, list[str]] = {}
    if runner_type not in RUNNER_TYPES:
        errors["runner_type"] = [f"Unknown runner type; use one of {', '.join(RUNNER_TYPES)}."]
    if runner_type in NEEDS_ENTRY_POINT and not entry_point:
        errors["entry_point"] = [f"The {runner_type} runner needs an entry_point."]
    if "parameters" in data:
        problems = schema_errors(data["parameters"])
        if problems:
            errors["parameters"] = problems  # type: ignore[assignment]
    retry = data.get("retry") or {}
    if retry:
        problems = retry_errors(retry)
        if problems:
            errors["retry"] = problems
    if errors:
        raise ValidationError("The action is not valid.", errors)
    if entry_point:
        check_relative_path(entry_point, "entry_point")


def retry_errors(retry: Any) -> list[str]:
    if not isinstance(retry, dict):
        return ["Must be an object {retries, delay, on}."]
    problems = []
    extra = set(retry) - {"retries", "delay", "on"}
    if extra:
        problems.append(f"Unknown keys: {', '.join(sorted(extra))}.")
    retries = retry.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        problems.append("'retries' must be an integer from 0 to 10.")
    delay = retry.get("delay", 0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 3600:
        problems.append("'delay' must be a number of seconds from 0 to 3600.")
    on = retry.get("on", ["failed"])
    if not isinstance(on, list) or not set(on) <= {"failed", "timeout", "abandoned"}:
        problems.append("'on' must be a list of: failed, timeout, abandoned.")
    return problems


def create_action(data: dict[str, Any], source_file: str | None = None) -> Action:
    check_storable(data)
    pack = pack_for_new_content(data["pack_name"])
    validate_action_fields(data, data["runner_type"], data.get("entry_point", ""))
    return add_content(Action, "Action", pack, data, FIELDS, source_file)


def update_action(action: Action, data: dict[str, Any]) -> Action:
    check_storable(data)
    runner_type = data.get("runner_type", action.runner_type)
    entry_point = data.get("entry_point", action.entry_point)
    validate_action_fields(data, runner_type, entry_point)
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
