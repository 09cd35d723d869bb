"""How a running execution learns it must stop, and proves its worker is alive.

``CancelWatch`` is the runner's ``is_canceled``; ``Heartbeat`` (one thread per pool process)
stamps ``heartbeat_at`` and notices a cancel (or the sweeper taking the execution away)
recorded in PostgreSQL; the
terminate signal of ``revoke(terminate=True)`` is caught, so the pool process does not die
and leave the tree orphaned, and makes the watch look for this execution's cancel at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from celery.signals import worker_process_init

from app.db import db
from app.extensions import redis_client
from app.services import execution_transitions as transitions
from app.services import executions

log = logging.getLogger("patchbay.executions")

# Cheap enough to ask Redis this often; the runner polls about every 0.2 s anyway.
CANCEL_CHECK_SECONDS = 0.2


class CancelWatch:
    """Answers the runner's ``is_canceled()`` from three sources, any of which suffices."""

    def __init__(self, execution_id: int) -> None:
        self.key = executions.cancel_key(execution_id)
        self.redis = redis_client()
        self.stop = threading.Event()  # cancel seen (Redis flag or the row), or execution lost
        self._checked = 0.0

    def __call__(self) -> bool:
        if self.stop.is_set():
            return True
        now = time.monotonic()
        if now - self._checked >= CANCEL_CHECK_SECONDS:
            self._checked = now
            try:
                if self.redis.exists(self.key):
                    self.stop.set()
            except Exception:  # noqa: BLE001 - Redis down: the heartbeat's DB read still works
                log.warning("cancel flag unreadable", exc_info=True)
        return self.stop.is_set()

    def check_now(self) -> None:
        """Make the next ``is_canceled()`` ask Redis at once instead of waiting its turn."""
        self._checked = 0.0


current: CancelWatch | None = None  # the one running in this pool process


def _on_terminate_signal(_signum: int, _frame: Any) -> None:
    # revoke(terminate=True) lands here instead of killing the pool process (which would
    # leave the process tree orphaned). It is only a hint to look now: Celery signals the
    # pool process by pid, and (as its docs warn) that process may already be running the
    # next task, which nobody canceled. The cancel itself is the execution's own Redis flag
    # (set before the revoke is sent) or its ``canceling`` row, which the heartbeat reads.
    if current is not None:
        current.check_now()


@worker_process_init.connect
def _install_terminate_handler(**_kwargs: Any) -> None:
    signal.signal(getattr(signal, executions.TERMINATE_SIGNAL), _on_terminate_signal)


class Heartbeat(threading.Thread):
    """One per pool process, for whatever execution that process runs now.

    Every ``every`` seconds it stamps ``heartbeat_at`` of the execution being run (the claim
    stamped it first), so a run shorter than one interval costs no thread and no statement;
    a ``canceling`` status, or the execution taken away (abandoned by the sweeper), stops
    the runner through its watch.
    """

    _instance: Heartbeat | None = None
    _pid = 0

    def __init__(self, every: float) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.every = every
        self.engine = db.engine
        self._lock = threading.Lock()
        self._current: tuple[int, CancelWatch] | None = None

    @classmethod
    def of_this_process(cls, every: float) -> Heartbeat:
        # Threads do not survive fork: each pool process starts its own, once.
        if cls._instance is None or cls._pid != os.getpid():
            cls._instance, cls._pid = cls(every), os.getpid()
            cls._instance.start()
        return cls._instance

    def watch(self, execution_id: int, watch: CancelWatch) -> None:
        with self._lock:
            self._current = (execution_id, watch)

    def release(self) -> None:
        with self._lock:
            self._current = None

    def run(self) -> None:
        while True:
            time.sleep(self.every)
            with self._lock:
                current = self._current
            if current is None:
                continue
            execution_id, watch = current
            try:
                status = transitions.heartbeat(self.engine, execution_id)
            except Exception:  # noqa: BLE001 - a missed beat is not fatal; ABANDON_AFTER allows several
                log.warning("heartbeat failed", exc_info=True)
                continue
            with self._lock:
                still_current = self._current is current
            if still_current and status != transitions.RUNNING:
                # canceling, or taken from us (abandoned by the sweeper): stop the runner.
                watch.stop.set()
