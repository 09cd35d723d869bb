"""The rules engine: an event in, enforcements and executions out (StackStorm's reactor shape).

``process_event`` claims the event (``pending → processing``, conditional: a duplicate
delivery does nothing), finds the enabled rules on its trigger that the event is for
(app/engine/trigger_parameters.py), evaluates their criteria (app/engine/rule_matching.py),
enforces each match (app/services/enforcements.py) and marks the event ``processed``, all in
one transaction; the executions are enqueued after the commit. ``explain_rule`` explains one
rule against a payload without writing or enqueuing anything.
"""

from __future__ import annotations

import logging
from typing import Any

from jinja2 import TemplateError as JinjaError
from sqlalchemy import select

from app.db import db
from app.engine.parameters import mask_secrets
from app.engine.rule_matching import match_criteria
from app.engine.templates import TemplateError
from app.engine.trigger_parameters import trigger_parameters_match
from app.models import Event, Execution, Pack, Rule
from app.services import enforcements, events, pack_config
from app.services.executions import parameter_schema
from app.services.masking import mask_value, secret_strings

log = logging.getLogger("patchbay.rules")


def process_event(event_id: int) -> dict[str, Any]:
    """Evaluate the rules for one event; commits, then enqueues what it requested."""
    event = events.claim_event(event_id)
    db.session.commit()  # the claim (and its time) is visible even if this worker dies now
    if event is None:
        status = db.session.scalar(select(Event.status).where(Event.id == event_id))
        log.info("event %s not claimed (status %s): duplicate delivery", event_id, status)
        return {"event": event_id, "claimed": False, "status": status}
    try:
        requested = _enforce_matching_rules(event)
        events.finish_event(event.id, events.PROCESSED)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - the event records why; it is never left processing
        db.session.rollback()
        log.exception("event %s could not be processed", event_id)
        events.finish_event(event_id, events.FAILED, f"{exc.__class__.__name__}: {exc}")
        db.session.commit()
        return {"event": event_id, "claimed": True, "status": events.FAILED}
    return {"event": event_id, "claimed": True, "status": events.PROCESSED,
            "executions": [execution.id for execution in requested]}


def rules_for(event: Event) -> list[Rule]:
    """The enabled rules on the event's trigger that the event is for (by trigger parameters)."""
    if event.trigger_id is None:
        return []
    rules = db.session.scalars(select(Rule).where(Rule.trigger_id == event.trigger_id, Rule.enabled.is_(True))
                               .order_by(Rule.id)).unique()
    return [rule for rule in rules if trigger_parameters_match(rule, event)]


def _enforce_matching_rules(event: Event) -> list[Execution]:
    requested = []
    for rule in rules_for(event):
        if not match_criteria(rule.criteria, event.payload).matched:
            continue
        execution = enforcements.enforce(rule, event)
        if execution is not None:
            requested.append(execution)
    return requested


def explain_rule(rule: Rule, payload: Any, event: Event | None = None) -> dict[str, Any]:
    """Why ``rule`` would (not) fire for ``payload``: each check, and the action's parameters."""
    verdict = match_criteria(rule.criteria, payload)
    answer: dict[str, Any] = {
        "rule": rule.ref, "enabled": rule.enabled, "matched": verdict.matched,
        "criteria": [check.as_dict() for check in verdict.checks],
    }
    if event is not None:
        answer["event"] = event.id
        answer["trigger_matches"] = event.trigger_id == rule.trigger_id
        answer["trigger_parameters_match"] = trigger_parameters_match(rule, event)
        answer["matched"] = verdict.matched and answer["trigger_matches"] and answer["trigger_parameters_match"]
    event_shown = enforcements.event_context(event) if event is not None else {"id": None, "trigger": rule.trigger.ref}
    try:
        rendered = enforcements.preview_parameters(rule, payload, event_shown)
    except (TemplateError, JinjaError, ValueError) as exc:
        answer["parameters"] = None
        answer["parameters_error"] = str(exc)
        return answer
    pack = db.session.scalar(select(Pack).where(Pack.name == rule.action.pack_name))
    config_secrets = pack_config.runtime(pack)[1]
    answer["parameters"] = mask_value(mask_secrets(rendered, parameter_schema(rule.action)),
                                      secret_strings({k: v for k, v in config_secrets.items() if v is not None}))
    return answer
