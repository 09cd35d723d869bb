"""The beat scheduler: timers and sensor polls reconciled from PostgreSQL, one active beat.

celery beat runs it (Procfile: ``--scheduler sensors.scheduler:PatchbayScheduler``). Every
RECONCILE_SECONDS it reads the enabled timer rules and sensors, so a change made any way
(API, pack registration or deletion, enable/disable) takes effect within seconds without a
restart. Only the beat holding a short Redis lock, renewed on every tick, sends anything: a
second beat stands by and takes over within LOCK_SECONDS when the first dies. A timer's
next tick is computed from the current time, never from its last one, so ticks missed while
no beat ran are skipped; the worker's conditional upsert (app/services/timers.py) keeps a
tick sent twice from firing twice. Static entries (``beat_schedule``) run as in plain beat.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery.beat import Scheduler
from redis.exceptions import LockError

from app.db import db, utcnow
from app.engine.timers import DATE, Timer, next_fire
from app.extensions import redis_client
from app.services import queue
from app.services.sensors import POLL_SENSOR, pollable_sensors
from app.services.timers import FIRE_TIMER, active_timers
from tasks.worker import flask_app

log = logging.getLogger("patchbay.beat")

TICK_SECONDS = 1.0        # longest sleep between two ticks (and lock renewals)
LOCK_KEY = "patchbay:beat:active"
LOCK_SECONDS = 5          # a dead beat is replaced after at most this
RECONCILE_SECONDS = 2.0   # how often the schedule is read again from PostgreSQL
DATE_GRACE = timedelta(seconds=10)  # a date timer first seen this late still fires


@dataclass
class Planned:
    """One dynamic entry: a timer or a sensor, and when it is due next (None: never again)."""

    task: str
    args: list[Any]
    summary: str
    queue: str
    next_at: datetime | None
    timer: Timer | None = None
    interval: float = 0.0       # sensors: seconds between polls
    spec: Any = field(default=None)  # what the entry was built from; a change rebuilds it

    def advance(self, now: datetime) -> None:
        if self.timer is not None:
            self.next_at = next_fire(self.timer, now)
        else:
            self.next_at = now + timedelta(seconds=self.interval)

    def expires(self) -> float:
        # A tick or poll still queued when the next one is due is dropped, never replayed late.
        if self.timer is not None and self.timer.interval:
            return float(max(1, min(self.timer.interval, 300)))
        return float(max(1.0, min(self.interval or 60.0, 300.0)))


class PatchbayScheduler(Scheduler):
    """celery beat's scheduler with timers and sensors read from PostgreSQL."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.planned: dict[str, Planned] = {}
        self.reconciled_at = 0.0
        self.lock: Any = None
        super().__init__(*args, **kwargs)
        self.max_interval = TICK_SECONDS

    def tick(self, *args: Any, **kwargs: Any) -> float:
        with flask_app.app_context():
            try:
                if not self._hold_lock():
                    return TICK_SECONDS
                if time.monotonic() - self.reconciled_at >= RECONCILE_SECONDS:
                    self._reconcile()
                wait = self._send_due()
            except Exception:  # noqa: BLE001 - a database or broker hiccup must not stop beat
                log.exception("beat tick failed; retrying")
                return TICK_SECONDS
            finally:
                db.session.remove()
        return max(0.0, min(wait, super().tick(*args, **kwargs)))

    def close(self) -> None:
        if self.lock is not None:
            with flask_app.app_context(), contextlib.suppress(LockError):  # it may have expired
                self.lock.release()
        super().close()

    def _hold_lock(self) -> bool:
        if self.lock is not None:
            try:
                if self.lock.reacquire():
                    return True
            except LockError:
                pass
            log.warning("beat lost its lock: another beat is active now")
            self.lock = None
            self.planned.clear()
        lock = redis_client().lock(LOCK_KEY, timeout=LOCK_SECONDS, thread_local=False)
        if not lock.acquire(blocking=False):
            return False
        log.info("this beat is the active one")
        self.lock = lock
        self.reconciled_at = 0.0  # read the schedule now, computing every next tick from now
        return True

    def _reconcile(self) -> None:
        now = utcnow()
        wanted: dict[str, Planned] = {}
        for timer_id, (timer, trigger) in active_timers().items():
            key = f"timer:{timer_id}"
            wanted[key] = self.planned.get(key) or Planned(
                FIRE_TIMER, [timer_id], f"timer {timer_id} ({trigger.ref})", queue.EVENTS_QUEUE,
                next_fire(timer, now - DATE_GRACE if timer.kind == DATE else now), timer=timer)
        for sensor_id, ref, interval in pollable_sensors():
            key = f"sensor:{ref}"
            existing = self.planned.get(key)
            spec = (sensor_id, interval)
            wanted[key] = existing if existing is not None and existing.spec == spec else Planned(
                POLL_SENSOR, [sensor_id], f"sensor {ref}", queue.DEFAULT_QUEUE, now, interval=interval, spec=spec)
        for key in set(self.planned) - set(wanted):
            log.info("beat: %s removed from the schedule", key)
        for key in set(wanted) - set(self.planned):
            log.info("beat: %s added to the schedule", key)
        self.planned = wanted
        self.reconciled_at = time.monotonic()

    def _send_due(self) -> float:
        now = utcnow()
        wait = TICK_SECONDS
        for entry in self.planned.values():
            if entry.next_at is not None and entry.next_at <= now:
                args = entry.args if entry.timer is None else [*entry.args, entry.next_at.isoformat()]
                try:
                    self.app.send_task(entry.task, args=args, queue=entry.queue, expires=entry.expires(),
                                       argsrepr=entry.summary)
                except Exception:  # noqa: BLE001 - broker down: this tick is missed, not replayed
                    log.exception("beat could not send %s", entry.summary)
                entry.advance(max(now, entry.next_at))
            if entry.next_at is not None:
                wait = min(wait, (entry.next_at - now).total_seconds())
        return wait

