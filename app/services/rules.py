"""Rules: create, change, enable/disable, delete, with their trigger and action checked.

A rule is checked when it is saved, not only when it fires. Its own fields (refs, criteria
with known operators, ...) are checked when the request is loaded, by the check pack files
get too (app/engine/content_checks.py). Here, and for pack registration by the same
functions: its trigger and action must exist, its trigger parameters must match the
trigger's ``parameters_schema``, and its action parameters must be parameters of the action
(values may be Jinja templates, rendered at enforcement) that a caller may set (no runner
parameter the action does not expose, no ``timeout`` above its cap, no startup names in
``env``). Required action parameters without a default must be given by the rule, since
nothing else supplies them when an event fires.
"""

from __future__ import annotations

from typing import Any

from app.db import db
from app.engine.parameters import instance_errors
from app.engine.timers import timer_errors
from app.engine.trigger_aliases import canonical_trigger_ref
from app.errors import ValidationError
from app.models import Action, Rule, Trigger
from app.services.content import (
    add_content,
    assign,
    check_storable,
    find_by_ref,
    get_by_ref,
    missing,
    pack_for_new_content,
)
from app.services.executions import parameter_errors
from app.services.webhook_declarations import check_webhook_rule

FIELDS = ("description", "tags", "enabled", "trigger_parameters", "criteria", "action_parameters")


def get_rule(ref: str) -> Rule:
    return get_by_ref(Rule, ref, "Rule")


def _resolve(model: type, ref: str, field: str, label: str) -> Any:
    row = find_by_ref(model, canonical_trigger_ref(ref) if model is Trigger else ref)
    if row is None:
        raise ValidationError(f"The rule's {field} does not exist.", {field: [missing(label, ref)]})
    return row


def fit_problems(trigger: Trigger, action: Action, values: dict[str, Any]) -> dict[str, Any]:
    """How the parameters in ``values`` (trigger_parameters, action_parameters) do not fit the
    rule's trigger and action, by field (empty when they fit)."""
    errors: dict[str, Any] = {}
    if "trigger_parameters" in values:
        problems = (instance_errors(trigger.parameters_schema or {}, values["trigger_parameters"])
                    or timer_errors(trigger.ref, values["trigger_parameters"]))
        if problems:
            errors["trigger_parameters"] = problems
    if "action_parameters" in values:
        problems = parameter_errors(action, values["action_parameters"], allow_templates=True)
        if problems:
            errors["action_parameters"] = problems
    return errors


def check_rule(trigger: Trigger, action: Action, values: dict[str, Any]) -> None:
    """422 naming every field in ``values`` that does not fit the rule's trigger and action."""
    errors = fit_problems(trigger, action, values)
    if errors:
        raise ValidationError("The rule is not valid.", errors)


def create_rule(data: dict[str, Any], source_file: str | None = None, author: str | None = None) -> Rule:
    """Add a rule; ``author`` (an identity's name) is who its executions run as."""
    check_storable(data)
    pack = pack_for_new_content(data["pack_name"])
    trigger = _resolve(Trigger, data["trigger"], "trigger", "Trigger")
    action = _resolve(Action, data["action"], "action", "Action")
    check_rule(trigger, action, {"trigger_parameters": data.get("trigger_parameters", {}),
                                 "action_parameters": data.get("action_parameters", {})})
    rule = add_content(Rule, "Rule", pack, data, FIELDS, source_file, trigger_id=trigger.id, action_id=action.id,
                       created_by=author, updated_by=author)
    db.session.refresh(rule, ["trigger", "action"])
    check_webhook_rule(rule)
    return rule


def update_rule(rule: Rule, data: dict[str, Any], author: str | None = None) -> Rule:
    """Change fields, checking what the change affects (a new action re-checks its parameters).

    Fields the change does not touch are not re-checked, so a rule that an action change left
    invalid can still be described, disabled or repaired one field at a time.
    """
    check_storable(data)
    trigger = _resolve(Trigger, data["trigger"], "trigger", "Trigger") if "trigger" in data else rule.trigger
    action = _resolve(Action, data["action"], "action", "Action") if "action" in data else rule.action
    values = {field: data[field] for field in ("trigger_parameters", "action_parameters") if field in data}
    if "trigger" in data:
        values.setdefault("trigger_parameters", rule.trigger_parameters)
    if "action" in data:
        values.setdefault("action_parameters", rule.action_parameters)
    check_rule(trigger, action, values)
    rule.trigger, rule.action = trigger, action
    assign(rule, data, FIELDS)
    rule.updated_by = author
    db.session.flush()
    check_webhook_rule(rule)
    return rule


def set_enabled(rule: Rule, enabled: bool, author: str | None = None) -> Rule:
    rule.enabled = enabled
    rule.updated_by = author
    db.session.flush()
    check_webhook_rule(rule)
    return rule


def delete_rule(rule: Rule) -> None:
    db.session.delete(rule)
    db.session.flush()
