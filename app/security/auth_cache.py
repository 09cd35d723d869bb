"""What a credential speaks for, remembered per web process and checked against Redis.

Authentication needs, per request, the identity (enabled, ``tokens_valid_after``), its roles
and grants, and for an API key the key's row. Each process keeps these in a small LRU, keyed
by identity id (tokens) or by key hash (API keys). Every entry carries the *stamps* it was
loaded under: one for everyone (a role's grants changed) and one per identity (disabled,
deleted, renamed, password or sessions reset, roles assigned or taken, keys revoked). Each
request reads the stamps with one ``MGET``; an entry whose stamps differ, or older than
``MAX_AGE``, is loaded again from the database.

Stamps change by themselves: a flush that touches those rows (whoever makes it) marks them,
and the commit gives each a new random value. Random rather than ``INCR``: a Redis that lost
its keys never comes back to a value an old entry holds. An entry is tagged with stamps read
*before* its rows, so a change committed meanwhile is either in the rows or changes the
stamps. Without Redis, authentication reads the database and caches nothing.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import redis
from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from app.extensions import redis_for
from app.models import ApiKey, Identity, PermissionGrant, Role, RoleAssignment
from app.security.principal import KeyInfo

log = logging.getLogger("patchbay.auth")

GLOBAL_STAMP = "patchbay:auth:stamp"
IDENTITY_STAMP = "patchbay:auth:stamp:identity:"
# Stamps that nobody reads expire; a missing stamp only means one load from the database.
STAMP_TTL = 86400
# An entry is reloaded after this long even if no stamp changed: the bound on how long a
# change whose stamp could not be written (Redis down at that commit) goes unseen.
MAX_AGE = 60.0
MAX_ENTRIES = 4096
# Identity columns whose change must reach every process at once (not last_login_at).
WATCHED_IDENTITY_COLUMNS = ("name", "kind", "enabled", "tokens_valid_after", "password_hash")
MARKS = "patchbay_auth_stamps"
EVERYONE = "*"

Stamps = tuple[str, str]


@dataclass(frozen=True)
class IdentityInfo:
    """The columns and grants authentication reads for an identity."""

    id: int
    name: str
    enabled: bool
    tokens_valid_after: datetime | None
    grants: frozenset[tuple[str, str | None]]
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    identity: IdentityInfo
    key: KeyInfo | None
    stamps: Stamps
    loaded: float


class Cache:
    """A thread-safe LRU of entries (gunicorn's gthread workers share one per process)."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Any, Entry] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Any, stamps: Stamps) -> Entry | None:
        """The entry under ``key`` if it was loaded under ``stamps`` and is young enough."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.stamps != stamps or time.monotonic() - entry.loaded > MAX_AGE:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def peek_identity_id(self, key: Any) -> int | None:
        """Whose entry ``key`` holds (to know which stamps to read), without using it."""
        entry = self._entries.get(key)
        return entry.identity.id if entry is not None else None

    def put(self, key: Any, entry: Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def touched(self, key: Any, last_used_at: datetime) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.key is not None:
                self._entries[key] = replace(entry, key=replace(entry.key, last_used_at=last_used_at))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def entries(app: Any) -> Cache:
    """The app's own entries (tests build apps on other databases in one process)."""
    found = app.extensions.get("patchbay_auth_entries")
    if found is None:
        found = app.extensions.setdefault("patchbay_auth_entries", Cache())
    return found


class VerifiedTokens:
    """Access tokens whose signature this app has verified, with their claims, until ``exp``.

    Verifying a JWT (twice parsed, HMAC, claims) cost ~0.4 ms a request; a token is sent many
    times, and its signature cannot change. Revocation is not cached: it is in the MGET.
    """

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._claims: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            claims = self._claims.get(token)
            if claims is None:
                return None
            if claims["exp"] <= time.time():
                del self._claims[token]
                return None
            self._claims.move_to_end(token)
            return claims

    def put(self, token: str, claims: dict[str, Any]) -> None:
        with self._lock:
            self._claims[token] = claims
            while len(self._claims) > self._size:
                self._claims.popitem(last=False)


def verified_tokens(app: Any) -> VerifiedTokens:
    """The app's own (a token verified under one signing key says nothing about another)."""
    tokens = app.extensions.get("patchbay_verified_tokens")
    if tokens is None:
        tokens = app.extensions.setdefault("patchbay_verified_tokens", VerifiedTokens())
    return tokens


def token_entry(identity_id: int) -> tuple[str, int]:
    return ("identity", identity_id)


def key_entry(key_hash: str) -> tuple[str, str]:
    return ("key", key_hash)


def stamp_keys(identity_id: int) -> list[str]:
    return [GLOBAL_STAMP, f"{IDENTITY_STAMP}{identity_id}"]


# Keys that most authenticated requests read next anyway (the content stamp of the action
# cache, read by every execute) ride in authentication's MGET: one Redis round trip fewer.
# Their values are kept for the rest of the request (``read_along``).
_ALONG: list[str] = []
ALONG_VALUES = "patchbay_read_along"


def read_along_with_stamps(key: str) -> None:
    """Have ``key`` read with the stamps of every authenticated request (idempotent)."""
    if key not in _ALONG:
        _ALONG.append(key)


def read_along(key: str) -> tuple[bool, Any]:
    """(True, value) if this request read ``key`` with its stamps — the value as it was at
    authentication, which came before the view — else (False, None)."""
    values = g.get(ALONG_VALUES) if has_request_context() else None
    if values is None or key not in values:
        return False, None
    return True, values[key]


def read_stamps(client: redis.Redis, identity_id: int, extra: Sequence[str] = ()) -> tuple[Stamps | None, list]:
    """One MGET: the stamps (None if one is missing) and the values of ``extra`` keys (and,
    kept for ``read_along``, of the keys registered with ``read_along_with_stamps``)."""
    along = list(_ALONG) if has_request_context() else []
    values = client.mget([*stamp_keys(identity_id), *extra, *along])
    first, second = values[0], values[1]
    stamps = (first.decode(), second.decode()) if first is not None and second is not None else None
    if along:
        setattr(g, ALONG_VALUES, dict(zip(along, values[len(values) - len(along):], strict=True)))
    return stamps, values[2:2 + len(extra)]


def ensure_stamps(client: redis.Redis, identity_id: int) -> Stamps:
    """The current stamps, creating missing ones; read before loading the rows they cover."""
    pipe = client.pipeline(transaction=False)
    for key in stamp_keys(identity_id):
        pipe.set(key, secrets.token_hex(16), nx=True, ex=STAMP_TTL)
    pipe.mget(stamp_keys(identity_id))
    values = pipe.execute()[-1]
    return values[0].decode(), values[1].decode()


def redis_client() -> redis.Redis:
    return redis_for(current_app.config["REDIS_URL"] if has_app_context() else _installed["url"])


# --- stamps change with the rows ------------------------------------------------------------

_installed: dict[str, str] = {}


def track_changes(redis_url: str) -> None:
    """Change the stamps whenever a commit changed what authentication reads (idempotent)."""
    _installed.setdefault("url", redis_url)
    if not event.contains(Session, "after_flush", _mark_changes):
        event.listen(Session, "after_flush", _mark_changes)
        event.listen(Session, "after_commit", _change_stamps)


def _mark_changes(session: Session, _flush_context: Any) -> None:
    marks: set = session.info.setdefault(MARKS, set())
    for obj in session.new:
        if isinstance(obj, Identity):  # a reused id (a restored backup) must not match an old entry
            marks.add(obj.id)
        elif isinstance(obj, RoleAssignment):
            marks.add(obj.identity_id)
        elif isinstance(obj, PermissionGrant):
            marks.add(EVERYONE)
    for obj in session.dirty:
        if isinstance(obj, Identity) and _changed(obj, WATCHED_IDENTITY_COLUMNS):
            marks.add(obj.id)
        elif isinstance(obj, ApiKey) and session.is_modified(obj):
            marks.add(obj.identity_id)
        elif isinstance(obj, Role) and _changed(obj, ("name",)):
            marks.add(EVERYONE)
        elif isinstance(obj, (PermissionGrant, RoleAssignment)) and session.is_modified(obj):
            marks.add(EVERYONE)
    for obj in session.deleted:
        if isinstance(obj, (Identity, ApiKey, RoleAssignment)):
            marks.add(obj.id if isinstance(obj, Identity) else obj.identity_id)
        elif isinstance(obj, (Role, PermissionGrant)):
            marks.add(EVERYONE)


def _changed(obj: Any, columns: tuple[str, ...]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in columns)


def _change_stamps(session: Session) -> None:
    marks = session.info.pop(MARKS, None)
    if marks:
        change_stamps(marks)


def change_stamps(marks: set) -> None:
    """New values for the stamps of these identity ids (and ``EVERYONE``'s): entries reload."""
    keys = [GLOBAL_STAMP if mark == EVERYONE else f"{IDENTITY_STAMP}{mark}" for mark in marks]
    try:
        pipe = redis_client().pipeline(transaction=False)
        for key in keys:
            pipe.set(key, secrets.token_hex(16), ex=STAMP_TTL)
        pipe.execute()
    except redis.RedisError:
        # The commit stands; other processes see the change when their entries age out.
        log.warning("could not change the authentication stamps %s; cached entries expire in %d s",
                    keys, MAX_AGE, exc_info=True)
