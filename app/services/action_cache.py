"""Actions by ref, remembered per process and checked against a Redis stamp.

Every execute looks its action up by ref. The row rarely changes, and loading it (an ORM
select with its JSON columns) was the largest share of the web process's CPU per execute
(docs/performance.md). Each process keeps what creating an execution reads of an action —
a frozen ``ActionFacts`` — keyed by ref and tagged with the *content stamp* read before the
row was. A commit that adds, changes or deletes an action or a pack gives the stamp a new
random value, so the next lookup in every process loads the row again; an entry is also
reloaded after ``MAX_AGE`` seconds (the bound on a change whose stamp could not be written).
Without Redis, every lookup reads the database.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import redis_client, redis_for
from app.models import Action, Pack
from app.security.auth_cache import read_along, read_along_with_stamps
from app.services.content import get_by_ref

log = logging.getLogger("patchbay.actions")

STAMP = "patchbay:content:stamp"
STAMP_TTL = 86400
MAX_AGE = 60.0
MAX_ENTRIES = 2048
MARK = "patchbay_content_changed"


@dataclass(frozen=True)
class ActionFacts:
    """What creating an execution reads of an action (app/services/executions.py)."""

    id: int
    ref: str
    pack_name: str
    runner_type: str
    parameters: Any
    timeout: int | None
    enabled: bool


class _Cache:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[str, float, ActionFacts]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ref: str, stamp: str) -> ActionFacts | None:
        with self._lock:
            found = self._entries.get(ref)
            if found is None or found[0] != stamp or time.monotonic() - found[1] > MAX_AGE:
                return None
            self._entries.move_to_end(ref)
            return found[2]

    def put(self, ref: str, stamp: str, facts: ActionFacts) -> None:
        with self._lock:
            self._entries[ref] = (stamp, time.monotonic(), facts)
            self._entries.move_to_end(ref)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _Cache()


def action_by_ref(ref: str) -> ActionFacts:
    """The action ``ref`` names (404 in the one error shape if none), from this process's
    cache while the content stamp has not moved."""
    stamp = _read_stamp()
    if stamp is not None:
        cached = _cache.get(ref, stamp)
        if cached is not None:
            return cached
    action = get_by_ref(Action, ref, "Action")
    facts = ActionFacts(id=action.id, ref=action.ref, pack_name=action.pack_name, runner_type=action.runner_type,
                        parameters=action.parameters, timeout=action.timeout, enabled=bool(action.enabled))
    if stamp is not None:
        _cache.put(ref, stamp, facts)
    return facts


def _read_stamp() -> str | None:
    """The current stamp (set now if there is none); None when Redis does not answer. A
    request usually has it already: it is read along with authentication's stamps."""
    try:
        found, stamp = read_along(STAMP)
        if found and stamp is not None:
            return stamp.decode() if isinstance(stamp, bytes) else stamp
        client = redis_client()
        stamp = client.get(STAMP)
        if stamp is None:
            fresh = secrets.token_hex(16)
            client.set(STAMP, fresh, ex=STAMP_TTL, nx=True)
            stamp = client.get(STAMP)
        return stamp.decode() if isinstance(stamp, bytes) else stamp
    except redis.RedisError:
        return None


# --- the stamp changes with the rows ---------------------------------------------------------

_installed: dict[str, str] = {}


def track_changes(redis_url: str) -> None:
    """Give the stamp a new value whenever a commit changed an action or a pack (idempotent)."""
    _installed.setdefault("url", redis_url)
    read_along_with_stamps(STAMP)
    if not event.contains(Session, "after_flush", _mark):
        event.listen(Session, "after_flush", _mark)
        event.listen(Session, "after_commit", _change_stamp)


def _mark(session: Session, _flush_context: Any) -> None:
    for objects in (session.new, session.dirty, session.deleted):
        if any(isinstance(obj, (Action, Pack)) for obj in objects):
            session.info[MARK] = True
            _cache.clear()  # this process sees its own change at once, committed or not
            return


def _change_stamp(session: Session) -> None:
    if not session.info.pop(MARK, False):
        return
    try:
        redis_for(_installed["url"]).set(STAMP, secrets.token_hex(16), ex=STAMP_TTL)
    except redis.RedisError:
        log.warning("could not change the content stamp; cached actions are reloaded within %d s", MAX_AGE,
                    exc_info=True)
