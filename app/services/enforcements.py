"""Enforcements: a rule matched an event, and what came of it (an execution, or why not).

``enforce`` is the enforcer of the rules engine: it writes one enforcement (at most one per
event and rule, by a unique constraint, so a duplicate delivery adds nothing) and one
``requested`` execution in the caller's transaction. A rule whose parameters do not render
or validate gets a ``failed`` enforcement with the reason, and nothing runs.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError as JinjaError
from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert

from app.db import db, utcnow
from app.engine.rule_parameters import render_context, render_rule_parameters
from app.engine.templates import TemplateError
from app.errors import APIError, NotFound
from app.models import Enforcement, Event, Execution, Pack, Rule
from app.models.event import ENFORCEMENT_STATUSES
from app.services import pack_config as pack_configs
from app.services.executions import create_execution, parameter_schema
from app.services.key_templates import Datastore
from app.services.rows import row_by_id

STATUSES = ENFORCEMENT_STATUSES
SUCCEEDED, FAILED = STATUSES


def rule_context(rule: Rule) -> dict[str, Any]:
    return {"id": rule.id, "ref": rule.ref, "name": rule.name, "pack": rule.pack_name}


def event_context(event: Event) -> dict[str, Any]:
    return {"id": event.id, "trigger": event.trigger_ref, "source": event.source,
            "created_at": event.created_at.isoformat() if event.created_at else None}


def pack_config(pack_name: str) -> dict[str, Any]:
    """The pack's config with its secrets (from Vault), as the worker will render with."""
    return pack_configs.runtime(db.session.scalar(select(Pack).where(Pack.name == pack_name)))[0]


def preview_parameters(rule: Rule, payload: Any, event: dict[str, Any]) -> dict[str, Any]:
    """The action parameters rendered as the worker would; TemplateError or ValueError."""
    action = rule.action
    context = render_context(payload, rule_context(rule), event, pack_config(action.pack_name),
                             {"action": action.ref, "pack": action.pack_name, "user": rule.created_by,
                              "rule": rule.ref})
    # Keys are looked up (a missing one fails the enforcement); secrets are not read here.
    context["kv"] = Datastore(rule.created_by, preview=True)
    return render_rule_parameters(parameter_schema(action), action.runner_type, rule.action_parameters or {}, context)


# Built once: one runs for every rule that matched an event.
_INSERT = (insert(Enforcement.__table__).on_conflict_do_nothing(index_elements=["event_id", "rule_id"])
           .returning(Enforcement.__table__.c.id))


def enforce(rule: Rule, event: Event) -> Execution | None:
    """Record that ``rule`` matched ``event`` and request its execution (flush only).

    Returns the execution to enqueue after the commit, or None (a failed enforcement, or one
    that exists already).
    """
    enforcement_id = db.session.scalar(_INSERT, {
        "event_id": event.id, "rule_id": rule.id, "rule_ref": rule.ref, "pack_name": rule.pack_name,
        "status": SUCCEEDED, "created_at": utcnow()})
    if enforcement_id is None:
        return None
    context = {"trigger": event.payload, "rule": rule_context(rule), "event": event_context(event),
               "enforcement": enforcement_id}
    try:
        preview_parameters(rule, event.payload, context["event"])
        # On an error create_execution has written nothing: the enforcement records why.
        return create_execution(rule.action, dict(rule.action_parameters or {}), user=rule.created_by,
                                rule_ref=rule.ref, enforcement_id=enforcement_id, context=context,
                                templates=True)
    except (TemplateError, JinjaError, ValueError, APIError) as exc:
        reason = f"{exc.message} {exc.errors}" if isinstance(exc, APIError) and exc.errors \
            else exc.message if isinstance(exc, APIError) else str(exc)
        db.session.execute(Enforcement.__table__.update().where(Enforcement.id == enforcement_id)
                           .values(status=FAILED, failure_reason=reason))
        return None


def get_enforcement(enforcement_id: int) -> Enforcement:
    enforcement = row_by_id(Enforcement, enforcement_id)
    if enforcement is None:
        raise NotFound(f"Enforcement {enforcement_id} does not exist (enforcements are kept for a limited time).")
    return enforcement


def execution_of(enforcement: Enforcement) -> Execution | None:
    return db.session.scalar(select(Execution).where(Execution.enforcement_id == enforcement.id).limit(1))


def of_event(event: Event) -> list[Enforcement]:
    return list(db.session.scalars(select(Enforcement).where(Enforcement.event_id == event.id)
                                   .order_by(Enforcement.id)))


def filtered(args: dict[str, Any], packs: set[str] | None) -> Select:
    query = select(Enforcement)
    if packs is not None:
        query = query.where(Enforcement.pack_name.in_(sorted(packs)))
    if args.get("rule"):
        query = query.where(Enforcement.rule_ref == args["rule"])
    if args.get("event"):
        query = query.where(Enforcement.event_id == args["event"])
    if args.get("status"):
        query = query.where(Enforcement.status == args["status"])
    if args.get("since"):
        query = query.where(Enforcement.created_at >= args["since"])
    if args.get("until"):
        query = query.where(Enforcement.created_at < args["until"])
    return query
