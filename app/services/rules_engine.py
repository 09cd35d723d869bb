"""The rules engine: an event in, enforcements and executions out (StackStorm's reactor shape).

``process_event`` claims the event (``pending → processing``, conditional: a duplicate
delivery does nothing), finds the enabled rules on its trigger that the event is for
(app/engine/trigger_parameters.py), evaluates their criteria (app/engine/rule_matching.py),
enforces each match (app/services/enforcements.py) and marks the event ``processed``, all in
one transaction; the executions are enqueued after the commit. ``receive`` does the same for
an event a web request records (a webhook, the events API), in that request's transaction:
one Celery hop per event instead of two. ``explain_rule`` explains one rule against a payload
without writing or enqueuing anything.
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
from app.models import Event, Execution, Pack, Rule, Trigger
from app.services import enforcements, events, pack_config, unit_of_work
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


def receive(trigger: Trigger | str, payload: Any, *, source: str,
            candidates: list[Rule] | None = None) -> Event:
    """Record an event and evaluate its rules in the caller's transaction (flush only): the
    commit makes the event (``processed``), its enforcements and executions visible at once,
    and the executions are enqueued after it — no ``process_event`` message, so no second
    Celery hop. For a web request, whose caller waits for the answer anyway.

    The payload is checked as ``record_event`` does (422). ``candidates``: the enabled rules
    the caller already loaded that include every rule the event can be for (a webhook's rules
    on its url), saving the select. A failure of the rules themselves leaves the event
    ``failed`` with the reason and nothing else of its processing, as ``process_event`` does.
    """
    event = events.record_event(trigger, payload, source=source, at_once=True)
    try:
        with unit_of_work.savepoint():
            _enforce_matching_rules(event, candidates)
    except Exception as exc:  # noqa: BLE001 - the event records why; the request still succeeds
        log.exception("event %s could not be processed", event.id)
        event.status, event.error = events.FAILED, f"{exc.__class__.__name__}: {exc}"
        db.session.flush()
    return event


def rules_for(event: Event, candidates: list[Rule] | None = None) -> list[Rule]:
    """The enabled rules on the event's trigger that the event is for (by trigger parameters),
    selected — or picked from ``candidates``, enabled rules loaded in this transaction."""
    if event.trigger_id is None:
        return []
    if candidates is None:
        rules = db.session.scalars(select(Rule).where(Rule.trigger_id == event.trigger_id, Rule.enabled.is_(True))
                                   .order_by(Rule.id)).unique()
    else:
        rules = sorted((rule for rule in candidates if rule.trigger_id == event.trigger_id and rule.enabled),
                       key=lambda rule: rule.id)
    return [rule for rule in rules if trigger_parameters_match(rule, event)]


def _enforce_matching_rules(event: Event, candidates: list[Rule] | None = None) -> list[Execution]:
    requested = []
    for rule in rules_for(event, candidates):
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
