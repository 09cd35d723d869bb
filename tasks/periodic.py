"""Periodic tasks: each declared beside its code with its beat entry, run at most one at a time.

``@periodic(name, every=...)`` makes a Celery task, adds it to ``beat_schedule`` (read by
tasks/worker.py once every task module is imported) and runs it under ``at_most_one``: a Redis
lock with a TTL (a holder that dies frees it by expiry) and a random token (redis-py's Lock
releases only if the token is still its own), so two beats by mistake or a run slower than
its interval never overlap. A periodic task that found nothing to do says so at DEBUG, and
``QuietPeriodic`` lowers Celery's own "received"/"succeeded"/"sending" lines for these tasks
to DEBUG, so an idle worker's log stays quiet at INFO.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from celery import shared_task
from redis.exceptions import LockError

from app.extensions import redis_client
from app.logging import add_filter_once, lowered

log = logging.getLogger("patchbay.periodic")

LOCK_PREFIX = "patchbay:lock:"
Every = float | Callable[[Mapping[str, Any]], float]


@dataclass(frozen=True)
class Entry:
    task: str
    every: Every
    expires: float


_entries: dict[str, Entry] = {}
# Task names whose routine Celery lines go to DEBUG: the static entries and the tasks beat
# sends dynamically (timer ticks, sensor polls).
QUIET_TASKS: set[str] = set()


def quiet_in_log(*task_names: str) -> None:
    """Tasks beat sends every few seconds outside ``beat_schedule`` (timer ticks, sensor polls):
    Celery's routine lines about them go to DEBUG too."""
    QUIET_TASKS.update(task_names)


def lock_key(name: str) -> str:
    return f"{LOCK_PREFIX}{name}"


@contextlib.contextmanager
def at_most_one(name: str, ttl: float) -> Iterator[bool]:
    """Yield True while holding the lock ``name`` (for ``ttl`` seconds at most), False at once
    when another run holds it."""
    lock = redis_client().lock(lock_key(name), timeout=ttl, blocking=False)
    if not lock.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(LockError):  # it expired meanwhile (maybe taken by another)
            lock.release()


def periodic(task_name: str, *, every: Every, lock_seconds: float,
             expires: float | None = None) -> Callable[[Callable[[], dict[str, Any]]], Any]:
    """Declare ``task_name`` as a periodic task run every ``every`` seconds (or a function of
    the Flask config), never two at once; a run that finds the lock held returns
    ``{"skipped": True}``."""
    short = task_name.rpartition(".")[2].replace("_", "-")

    def decorate(function: Callable[[], dict[str, Any]]) -> Any:
        @functools.wraps(function)
        def guarded() -> dict[str, Any]:
            with at_most_one(short, lock_seconds) as mine:
                if not mine:
                    log.debug("%s: another run holds the lock; skipped", task_name)
                    return {"skipped": True}
                outcome = function()
            log.debug("%s: %s", task_name, outcome)
            return outcome

        _entries[short] = Entry(task_name, every, expires if expires is not None else lock_seconds)
        quiet_in_log(task_name)
        # Early ack: a run lost with its worker is simply the next run, a few seconds later.
        return shared_task(name=task_name, acks_late=False)(guarded)

    return decorate


def beat_schedule(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule`` for every task declared with ``@periodic`` so far."""
    schedule = {}
    for key, entry in sorted(_entries.items()):
        seconds = entry.every(config) if callable(entry.every) else entry.every
        schedule[key] = {"task": entry.task, "schedule": float(seconds), "options": {"expires": entry.expires}}
    return schedule


class QuietPeriodic(logging.Filter):
    """Celery's INFO lines about periodic tasks ("received", "succeeded", beat's "sending due
    task") become DEBUG: they would otherwise fill the log every few seconds. Warnings and
    errors pass unchanged."""

    LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not self._about_periodic(record):
            return True
        return lowered(record, logging.DEBUG)

    @staticmethod
    def _about_periodic(record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, Mapping):
            return args.get("name") in QUIET_TASKS
        return isinstance(args, tuple) and any(isinstance(a, str) and a in QUIET_TASKS for a in args)

    @classmethod
    def install(cls) -> None:
        quiet = cls()
        for name in cls.LOGGERS:
            add_filter_once(name, quiet)
