"""Inquiries: a question to a person, on which an execution waits (``pending``).

``open_inquiry`` is called by the container for a runner that asks (``core.ask``), in the
transaction that makes its execution wait; ``respond`` records the one answer and wakes the
execution in the same transaction, and its resume message goes after the commit
(app/services/unit_of_work.py). A wake whose message is lost is resumed by the sweeper.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from app.db import db, utcnow
from app.engine.parameters import instance_errors, json_schema_errors
from app.errors import Conflict, NotFound, ValidationError
from app.models import Execution, Inquiry
from app.services import executions
from app.services.content import check_storable
from app.services.rows import row_by_id

PENDING, RESPONDED, TIMED_OUT, CANCELED = "pending", "responded", "timed_out", "canceled"


def open_inquiry(execution: Execution, *, schema: dict[str, Any], route: str = "", users: list[str] = (),
                 roles: list[str] = (), ttl_minutes: int | None = None, message: str = "") -> Inquiry:
    """Add a pending inquiry for ``execution`` (flush only)."""
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
    return inquiry


def get_inquiry(inquiry_id: int) -> Inquiry:
    inquiry = row_by_id(Inquiry, inquiry_id)
    if inquiry is None:
        raise NotFound(f"Inquiry {inquiry_id} does not exist.")
    return inquiry


def respond(inquiry: Inquiry, response: Any, responder: str | None) -> Inquiry:
    """Record the answer (422 naming the field if it does not match the schema, 409 if the
    inquiry was already answered or closed) and wake its execution (flush only)."""
    check_storable({"response": response})
    problems = instance_errors(inquiry.schema or {}, response)
    if problems:
        raise ValidationError("The response does not match the inquiry's schema.", {"response": problems})
    answered = db.session.execute(
        update(Inquiry).where(Inquiry.id == inquiry.id, Inquiry.status == PENDING)
        .values(status=RESPONDED, response=response, responder=responder, responded_at=utcnow())
        .returning(Inquiry.id)
    ).first()
    if answered is None:
        db.session.refresh(inquiry)
        raise Conflict(f"Inquiry {inquiry.id} is {inquiry.status}; it takes one answer only.",
                       {"status": [inquiry.status]})
    db.session.refresh(inquiry)
    executions.wake([inquiry.execution_id])  # resumed after the commit
    return inquiry


def inquiry_state(inquiry_id: int) -> tuple[str, Any]:
    """(status, response) of an inquiry, read fresh: what a resumed ``core.ask`` reports."""
    inquiry = db.session.get(Inquiry, inquiry_id, populate_existing=True)
    if inquiry is None:
        return CANCELED, None
    return inquiry.status, inquiry.response
