"""fire_timer: beat's tick of one timer becomes an event (sensors/scheduler.py sends it).

It takes no ``at_most_one`` lock: two ticks of one timer are two events, and the same tick
sent twice fires once (the conditional upsert in app/services/timers.py).
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task

from app.db import db
from app.services import unit_of_work
from app.services.timers import FIRE_TIMER, fire
from tasks.periodic import quiet_in_log

log = logging.getLogger("patchbay.timers")
quiet_in_log(FIRE_TIMER)


# Early ack: a tick lost with its worker is a skipped tick, as a missed one is.
@shared_task(name=FIRE_TIMER, acks_late=False)
def fire_timer(timer_id: str, fire_at: str) -> int | None:
    event = fire(timer_id, datetime.fromisoformat(fire_at))
    if event is None:
        db.session.rollback()
        log.debug("timer %s: tick %s had already fired (or the timer is gone)", timer_id, fire_at)
        return None
    unit_of_work.commit()  # the event's message goes after the commit
    log.info("timer %s fired event %s", timer_id, event.id)
    return event.id
