"""fire_timer: beat's tick of one timer becomes an event (sensors/scheduler.py sends it)."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from app.db import db
from app.services.events import enqueue_event
from app.services.timers import FIRE_TIMER, fire


# Early ack: a tick lost with its worker is a skipped tick, as a missed one is.
@shared_task(name=FIRE_TIMER, acks_late=False)
def fire_timer(timer_id: str, fire_at: str) -> int | None:
    event = fire(timer_id, datetime.fromisoformat(fire_at))
    if event is None:
        db.session.rollback()
        return None
    db.session.commit()
    enqueue_event(event)
    return event.id
