"""Inquiries: a question to a person, on which an execution waits (``pending``).

``open_inquiry`` is called by the container for a runner that asks (``core.ask``), in the
transaction that makes its execution wait; after that commit ``core.inquiry_created`` fires.
``respond``, ``cancel`` and ``expire_batch`` each move an inquiry out of ``pending`` with one
guarded UPDATE and wake its execution in the same transaction; the resumed ``core.ask``
reads the inquiry's status (``inquiry_state``) and ends succeeded, canceled or failed, so
the execution's own status changes stay in app/services/execution_transitions.py. The resume
message goes after the commit (app/services/unit_of_work.py); a lost one is re-sent by the
sweeper.

Who may answer (as in StackStorm): ``inquiries:respond`` on the pack of the inquiry's root
execution, and, when the inquiry names ``users``, being one of them, and when it names
``roles``, holding one of them.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, and_, cast, exists, false, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.orm import aliased

from app.db import db, utcnow
from app.engine.parameters import json_schema_errors, mask_secret_properties, validator
from app.engine.schema_patterns import pattern_budget
from app.errors import Conflict, Forbidden, NotFound, ValidationError
from app.models import Execution, Inquiry, Rule, Trigger
from app.models.inquiry import CANCELED, PENDING, RESPONDED, TIMED_OUT
from app.security.principal import Principal
from app.services import audit, executions, unit_of_work
from app.services.content import check_storable
from app.services.events import record_event
from app.services.rows import row_by_id

log = logging.getLogger("patchbay.inquiries")

VIEW, RESPOND = "inquiries:view", "inquiries:respond"
# The built-in trigger fired when an inquiry opens (StackStorm: core.st2.generic.inquiry).
INQUIRY_CREATED = "core.inquiry_created"
EXPIRE_BATCH = 500
MAX_ERRORS = 20

_root = aliased(Execution, name="root_execution")


def open_inquiry(execution: Execution, *, schema: dict[str, Any], route: str = "", users: list[str] = (),
                 roles: list[str] = (), ttl_minutes: int | None = None, message: str = "") -> Inquiry:
    """Add a pending inquiry for ``execution`` (flush only); ``core.inquiry_created`` fires
    once it is committed."""
    problems = json_schema_errors(schema)
    if problems:
        raise ValueError(f"The inquiry's schema is not usable: {problems[0]}")
    now = utcnow()
    inquiry = Inquiry(
        execution_id=execution.id, root_execution_id=execution.root_id or execution.id, schema=schema,
        route=route or "", users=list(users), roles=list(roles), status=PENDING, message=message,
        created_at=now, expires_at=now + timedelta(minutes=ttl_minutes) if ttl_minutes else None,
    )
    db.session.add(inquiry)
    db.session.flush()
    unit_of_work.after_commit(fire_inquiry_created, inquiry.id)
    return inquiry


def get_inquiry(inquiry_id: int) -> Inquiry:
    inquiry = row_by_id(Inquiry, inquiry_id)
    if inquiry is None:
        raise NotFound(f"Inquiry {inquiry_id} does not exist.")
    return inquiry


def root_pack(inquiry: Inquiry) -> str:
    """The pack whose grants cover this inquiry: its root execution's."""
    return db.session.scalar(select(Execution.pack_name)
                             .where(Execution.id == (inquiry.root_execution_id or inquiry.execution_id))) or ""


# --- Who may see and answer ------------------------------------------------------------------

def ensure_visible(principal: Principal, inquiry: Inquiry) -> None:
    if not principal.can(VIEW, root_pack(inquiry)):
        raise Forbidden(f"This needs the {VIEW} permission.", {"permission": VIEW})


def ensure_may_respond(principal: Principal, inquiry: Inquiry) -> None:
    """403 unless ``principal`` may answer (or cancel) ``inquiry``."""
    if not principal.can(RESPOND, root_pack(inquiry)):
        raise Forbidden(f"This needs the {RESPOND} permission.", {"permission": RESPOND})
    if inquiry.users and principal.name not in inquiry.users:
        raise Forbidden(f"Only these users may answer inquiry {inquiry.id}: {', '.join(inquiry.users)}.",
                        {"users": list(inquiry.users)})
    if inquiry.roles and not set(inquiry.roles) & set(principal.roles):
        raise Forbidden(f"Only holders of these roles may answer inquiry {inquiry.id}: {', '.join(inquiry.roles)}.",
                        {"roles": list(inquiry.roles)})


def _answerable_by(principal: Principal) -> Any:
    """The SQL condition mirroring ``ensure_may_respond``."""
    packs = principal.packs_for(RESPOND)
    if packs is not None and not packs:
        return false()
    conditions = [or_(Inquiry.users == _json([]), Inquiry.users.contains(_json([principal.name])))]
    roles_named = Inquiry.roles.has_any(array(sorted(principal.roles))) if principal.roles else false()
    conditions.append(or_(Inquiry.roles == _json([]), roles_named))
    if packs is not None:
        conditions.append(_root.pack_name.in_(sorted(packs)))
    return and_(*conditions)


def _json(value: Any) -> Any:
    return cast(literal(value, JSONB), JSONB)


def filtered(args: dict[str, Any], principal: Principal) -> Select:
    """The list: ``inquiries:view`` on the root's pack; by default the pending inquiries the
    caller may answer (see docs/inquiries.md)."""
    answerable = args.get("answerable")
    if answerable is None:
        answerable = "status" not in args
    query = select(Inquiry).where(Inquiry.status == args.get("status", PENDING))
    view_packs = principal.packs_for(VIEW)
    needs_root = view_packs is not None or (answerable and principal.packs_for(RESPOND) is not None)
    if needs_root:
        query = query.join(_root, _root.id == Inquiry.root_execution_id)
    if view_packs is not None:
        query = query.where(_root.pack_name.in_(sorted(view_packs)))
    if answerable:
        query = query.where(_answerable_by(principal))
    if args.get("execution"):
        query = query.where(Inquiry.execution_id == args["execution"])
    if args.get("root"):
        query = query.where(Inquiry.root_execution_id == args["root"])
    return query


# --- Answering, canceling, expiring ----------------------------------------------------------

def response_errors(schema: dict[str, Any], response: Any) -> dict[str, Any]:
    """Why ``response`` does not match ``schema``, keyed by field under ``response`` the way
    marshmallow nests them (``{"response": {"approved": [...]}}``); empty when it matches."""
    found: dict[str, Any] = {}
    count = 0
    try:
        with pattern_budget():
            for error in sorted(validator(schema).iter_errors(response),
                                key=lambda e: (list(map(str, e.absolute_path)), e.message)):
                path = [str(p) for p in error.absolute_path]
                if error.validator == "required" and isinstance(error.instance, dict):
                    missing = [name for name in error.validator_value if name not in error.instance]
                    for name in missing:
                        _add(found, [*path, str(name)], "Missing data for required field.")
                else:
                    _add(found, path or ["_schema"], error.message)
                count += 1
                if count >= MAX_ERRORS:
                    break
    except Exception:  # noqa: BLE001 - a stored schema that cannot be applied is not the answer's fault
        log.warning("an inquiry's schema could not be applied", exc_info=True)
        _add(found, ["_schema"], "The inquiry's schema cannot be applied to this response.")
    return {"response": found} if found else {}


def _add(errors: dict[str, Any], path: list[str], message: str) -> None:
    node = errors
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):  # a message already at this level: keep it beside
            child = node[key] = {"_schema": child}
        node = child
    leaf = node.setdefault(path[-1], [])
    if isinstance(leaf, dict):
        leaf.setdefault("_schema", []).append(message)
    else:
        leaf.append(message)


def respond(inquiry: Inquiry, response: Any, responder: str | None) -> Inquiry:
    """Record the answer (422 naming the field if it does not match the schema, 409 if the
    inquiry was already answered or closed) and wake its execution (flush only).

    What the schema marks ``secret: true`` is checked, then stored as ``********``: nobody
    reads it back (the API, the audit log and the resumed ``core.ask`` all show it masked),
    so no table ever holds it."""
    check_storable({"response": response})
    problems = response_errors(inquiry.schema or {}, response)
    if problems:
        raise ValidationError("The response does not match the inquiry's schema.", problems)
    _close(inquiry, RESPONDED, response=mask_secret_properties(inquiry.schema or {}, response),
           responder=responder, responded_at=utcnow())
    return inquiry


def cancel(inquiry: Inquiry) -> Inquiry:
    """``pending → canceled``; its execution is woken and ends ``canceled`` (flush only)."""
    _close(inquiry, CANCELED)
    return inquiry


def _close(inquiry: Inquiry, status: str, **values: Any) -> None:
    moved = db.session.execute(
        update(Inquiry).where(Inquiry.id == inquiry.id, Inquiry.status == PENDING)
        .values(status=status, **values).returning(Inquiry.id)
    ).first()
    db.session.refresh(inquiry)
    if moved is None:
        raise Conflict(f"Inquiry {inquiry.id} is {inquiry.status}; only a pending inquiry can be "
                       f"{'answered' if status == RESPONDED else status}.", {"status": [inquiry.status]})
    executions.wake([inquiry.execution_id])  # resumed after the commit


_EXPIRE = text(
    f"UPDATE inquiries SET status = '{TIMED_OUT}' WHERE id IN ("
    f" SELECT id FROM inquiries WHERE status = '{PENDING}' AND expires_at <= :now"
    " ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
    f" AND status = '{PENDING}' RETURNING id, execution_id")


def expire_batch(limit: int = EXPIRE_BATCH) -> list[int]:
    """Time out up to ``limit`` pending inquiries past ``expires_at`` and wake their
    executions (``core.ask`` then fails); flush only. Returns the inquiry ids."""
    rows = db.session.execute(_EXPIRE, {"now": utcnow(), "limit": limit}).all()
    executions.wake([row.execution_id for row in rows])
    return sorted(row.id for row in rows)


def inquiry_state(inquiry_id: int) -> tuple[str, Any]:
    """(status, response) of an inquiry, read fresh: what a resumed ``core.ask`` reports (its
    result, shown to whoever may view the execution: ``secret: true`` properties masked)."""
    inquiry = db.session.get(Inquiry, inquiry_id, populate_existing=True)
    if inquiry is None:
        return CANCELED, None
    return inquiry.status, inquiry.shown_response()


# --- What others see -------------------------------------------------------------------------

def audit_response(inquiry: Inquiry) -> None:
    """The audit entry of an answer: who answered which inquiry, with secret values masked."""
    audit.record_audit(RESPOND, "inquiries", str(inquiry.id), status_code=200, actor=inquiry.responder,
                       details={"execution_id": inquiry.execution_id, "root_execution_id": inquiry.root_execution_id,
                                "responder": inquiry.responder, "response": inquiry.shown_response()})


def created_payload(inquiry: Inquiry) -> dict[str, Any]:
    return {"id": inquiry.id, "route": inquiry.route, "execution_id": inquiry.execution_id,
            "root_execution_id": inquiry.root_execution_id, "users": list(inquiry.users or []),
            "roles": list(inquiry.roles or []), "schema": inquiry.schema or {},
            "expires_at": inquiry.expires_at.isoformat() if inquiry.expires_at else None}


def fire_inquiry_created(inquiry_id: int) -> int | None:
    """Record ``core.inquiry_created`` for an opened inquiry, after its commit; commits.

    Nothing is recorded while no enabled rule listens (as for ``core.execution_finished``).
    """
    trigger = db.session.scalar(select(Trigger).where(
        Trigger.ref == INQUIRY_CREATED, exists().where(Rule.trigger_id == Trigger.id, Rule.enabled.is_(True))))
    inquiry = db.session.get(Inquiry, inquiry_id) if trigger is not None else None
    if inquiry is None:
        db.session.rollback()
        return None
    event = record_event(trigger, created_payload(inquiry), source=f"inquiry:{inquiry_id}")
    db.session.commit()
    return event.id
