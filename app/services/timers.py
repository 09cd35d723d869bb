"""Timers: which timers the enabled rules define, and firing one tick as an event.

Beat (sensors/scheduler.py) reads ``active_timers`` every few seconds and sends
``fire_timer(timer_id, fire_at)`` when a tick is due; the worker records the tick through
``fire``. A tick records its event only when it is later than the timer's last one (one
conditional upsert), so two beats or a redelivered message never fire a timer twice, and a
date timer fires once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.db import db
from app.engine.timers import TIMER_TRIGGER_REFS, Timer, TimerError, parse_timer, timer_source
from app.models import Event, Rule, TimerState, Trigger
from app.services.events import record_event

log = logging.getLogger("patchbay.timers")

FIRE_TIMER = "patchbay.fire_timer"


def active_timers() -> dict[str, tuple[Timer, Trigger]]:
    """Every timer an enabled rule defines, by timer id (rules with the same one share it)."""
    rules = db.session.scalars(
        select(Rule).join(Rule.trigger).where(Rule.enabled.is_(True), Trigger.ref.in_(TIMER_TRIGGER_REFS))
        .order_by(Rule.id)
    )
    found: dict[str, tuple[Timer, Trigger]] = {}
    for rule in rules:
        try:
            timer = parse_timer(rule.trigger.ref, rule.trigger_parameters)
        except TimerError as exc:
            log.warning("rule %s: its timer cannot be scheduled: %s", rule.ref, exc)
            continue
        found.setdefault(timer.id, (timer, rule.trigger))
    return found


def fire(timer_id: str, fire_at: datetime) -> Event | None:
    """Record the tick of ``timer_id`` due at ``fire_at`` as a pending event; flush only.

    None when no enabled rule defines the timer any more, or the tick was already recorded.
    """
    active = active_timers().get(timer_id)
    if active is None:
        return None
    timer, trigger = active
    claimed = db.session.execute(
        insert(TimerState).values(timer_id=timer_id, last_fired_at=fire_at)
        .on_conflict_do_update(index_elements=[TimerState.timer_id], set_={"last_fired_at": fire_at},
                               where=TimerState.last_fired_at < fire_at)
        .returning(TimerState.timer_id)
    ).first()
    if claimed is None:
        return None
    payload = {"executed_at": fire_at.isoformat(), "schedule": timer.parameters}
    return record_event(trigger, payload, source=timer_source(trigger.ref, timer.parameters))

