"""Events: recording that something happened, and handing it to the rules engine.

Whoever turns the outside world into an event (a timer tick, a sensor's dispatch, an
execution's end) calls ``record_event`` inside its unit of work and commits; the
``process_event`` message goes after the commit (app/services/unit_of_work.py): one sent
before could reach a worker before the row is visible. An event whose message is lost stays
``pending`` and a sweeper sends it again. A web request (a webhook, the events API) records
its event through ``rules_engine.receive`` instead, which evaluates the rules in the same
transaction (``at_once``): no message at all.
The event's ``source`` says which rules on its trigger it is for (app/engine/trigger_parameters.py).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Select, select, text

from app.db import db, utcnow
from app.engine.parameters import instance_errors
from app.engine.trigger_aliases import canonical_trigger_ref
from app.errors import NotFound, ValidationError
from app.logging import request_id_var
from app.models import Event, Trigger
from app.models.event import EVENT_STATUSES
from app.services import queue, unit_of_work
from app.services.content import check_storable
from app.services.rows import RowInserter, column_list, loaded_row, row_by_id
from app.services.triggers import get_trigger

log = logging.getLogger("patchbay.events")

STATUSES = EVENT_STATUSES
PENDING, PROCESSING, PROCESSED, FAILED = STATUSES


_insert = RowInserter(Event)  # an event is written for every webhook call and timer tick


def record_event(trigger: Trigger | str, payload: Any, *, source: str, at_once: bool = False) -> Event:
    """Add a ``pending`` event of ``trigger`` (a row, a ref or a StackStorm alias) with
    ``payload``, to be sent to ``process_event`` after the commit; flush only.

    ``at_once``: the caller processes it in this transaction (``rules_engine.receive``): it
    is written ``processed`` — or changed to ``failed`` — with its claim and processing times
    those of its recording, and no message is sent. Nobody sees
    it before the commit, and the commit makes the event, its enforcements and executions
    visible together.

    The payload must match the trigger type's payload schema (422 naming the field).
    """
    trigger = get_trigger(canonical_trigger_ref(trigger)) if isinstance(trigger, str) else trigger
    check_storable({"payload": payload})
    problems = instance_errors(trigger.payload_schema or {}, payload) if trigger.payload_schema else []
    if problems:
        raise ValidationError(f"The payload does not match the payload schema of {trigger.ref}.",
                              {"payload": problems})
    now = utcnow()
    event = _insert(trigger_id=trigger.id, trigger_ref=trigger.ref, pack_name=trigger.pack_name, payload=payload,
                    source=source, status=PROCESSED if at_once else PENDING, request_id=request_id_var.get(),
                    created_at=now, claimed_at=now if at_once else None, processed_at=now if at_once else None)
    if not at_once:
        unit_of_work.after_commit(enqueue_event, event)
    return event


def enqueue_event(event: Event) -> None:
    """Send ``process_event`` for a committed event (its id only): ``record_event`` has it
    sent after the commit; the sweeper calls it for events whose message was lost. A broker
    failure is left to the sweeper, which re-sends events left ``pending``."""
    try:
        queue.send(queue.PROCESS_EVENT, [event.id], summary=f"event {event.id} ({event.trigger_ref})")
    except Exception:  # noqa: BLE001 - the row is committed; the sweeper re-sends it
        log.warning("could not enqueue event %s; the sweeper will retry", event.id, exc_info=True)


def get_event(event_id: int) -> Event:
    event = row_by_id(Event, event_id)
    if event is None:
        raise NotFound(f"Event {event_id} does not exist (events are kept for a limited time).")
    return event


# Both run for every event: plain SQL built once (the ORM compiles an UPDATE per call).
_CLAIM = (f"UPDATE events SET status = '{PROCESSING}', claimed_at = %(now)s"
          f" WHERE id = %(id)s AND status = '{PENDING}' RETURNING {column_list(Event)}")
_FINISH = text(f"UPDATE events SET status = :status, error = :error, processed_at = :now"
               f" WHERE id = :id AND status = '{PROCESSING}'")


def claim_event(event_id: int) -> Event | None:
    """``pending → processing`` with the claim time, if still pending. At the start of a
    transaction it is committed as it runs (autocommit: one round trip), so the claim time
    is there even if the worker dies next; inside an open one it is flushed only."""
    row = unit_of_work.statement_row(_CLAIM, {"id": event_id, "now": utcnow()}, alone=True)
    return loaded_row(Event, row) if row is not None else None


def finish_event(event_id: int, status: str, error: str | None = None) -> None:
    """``processing → processed | failed`` (flush only)."""
    db.session.execute(_FINISH, {"id": event_id, "status": status, "error": error, "now": utcnow()})


def filtered(args: dict[str, Any], packs: set[str] | None) -> Select:
    """Events matching the list filters, on indexed columns; ``packs`` None means every pack."""
    query = select(Event)
    if packs is not None:
        query = query.where(Event.pack_name.in_(sorted(packs)))
    if args.get("trigger"):
        query = query.where(Event.trigger_ref == canonical_trigger_ref(args["trigger"]))
    if args.get("source"):
        query = query.where(Event.source == args["source"])
    if args.get("status"):
        query = query.where(Event.status == args["status"])
    if args.get("since"):
        query = query.where(Event.created_at >= args["since"])
    if args.get("until"):
        query = query.where(Event.created_at < args["until"])
    return query
