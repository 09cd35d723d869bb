"""``core.execution_finished``: an execution that ended becomes an event, so a rule can react
(notify on failures). StackStorm calls this trigger ``core.st2.generic.actiontrigger``.

Fired after the end is committed (by the worker, the sweeper, or a cancel of a queued
execution), as its own event: the rules it fires run as new executions later, never inside
the one that ended, so a rule on this trigger whose own executions end fires again (as in
StackStorm) but nothing recurses.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import exists, select

from app.db import db
from app.models import Execution, Rule, Trigger
from app.services import unit_of_work
from app.services.events import record_event
from app.services.execution_transitions import EXECUTION_FINISHED

log = logging.getLogger("patchbay.events")



def finished_payload(execution: Execution) -> dict[str, Any]:
    return {
        "execution_id": execution.id, "action": execution.action_ref, "action_ref": execution.action_ref,
        "pack": execution.pack_name, "status": execution.status, "user": execution.user,
        "result": execution.result or {}, "error": execution.error, "rule": execution.rule_ref,
        "parent_id": execution.parent_id,
        "started_at": execution.started_at.isoformat() if execution.started_at else None,
        "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
    }


def fire_execution_finished(execution_id: int) -> int | None:
    """Record and enqueue the event for an ended execution; commits. Returns the event id.

    Nothing is recorded while no enabled rule listens: most executions end unobserved, and an
    event row per execution would double the writes of every run.
    """
    # One round trip: the trigger only if an enabled rule listens (every execution end asks).
    trigger = db.session.scalar(select(Trigger).where(
        Trigger.ref == EXECUTION_FINISHED, exists().where(Rule.trigger_id == Trigger.id, Rule.enabled.is_(True))))
    execution = db.session.get(Execution, execution_id, populate_existing=True) if trigger is not None else None
    if execution is None:
        db.session.rollback()
        return None
    event = record_event(trigger, finished_payload(execution), source=f"execution:{execution_id}")
    unit_of_work.commit()
    return event.id
