"""Execution output: a Redis list while the execution runs, table rows once it has ended.

Each line is ``{seq, ts, stream, line}``; ``seq`` counts from 1 and is the same in Redis and
PostgreSQL, so a reader can move from one to the other without losing or repeating lines.
Every read fetches one bounded page; live streams (``follow``) hold a slot, counted in Redis
across web processes and in each process (their server threads are kept apart from the API's).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.db import db
from app.engine.unstorable import replace_unstorable
from app.models import ExecutionLogLine
from app.models.execution import LOG_STREAMS
from app.services.masking import mask_text

log = logging.getLogger("patchbay.executions")

STREAMS = LOG_STREAMS
# Kept this long if nobody persists it (the sweeper persists abandoned executions' logs).
REDIS_TTL_SECONDS = 7 * 24 * 3600
PERSIST_BATCH = 5000
# What a line costs beyond its text (row header, seq, timestamp, stream, index entry; about as
# much again as JSON in Redis): counted against the cap so that empty lines are not free.
LINE_OVERHEAD_BYTES = 64


def log_key(execution_id: int) -> str:
    return f"patchbay:execution:{execution_id}:log"


def truncated_key(execution_id: int) -> str:
    return f"patchbay:execution:{execution_id}:log-truncated"


def line_cost(line: str) -> int:
    """Bytes a line counts against EXECUTION_LOG_MAX_BYTES: its UTF-8 text plus a fixed overhead."""
    return len(line.encode("utf-8", "replace")) + LINE_OVERHEAD_BYTES


class LogWriter:
    """Appends lines to the execution's Redis list; thread-safe (runners read two pipes)."""

    def __init__(self, client: redis.Redis, execution_id: int, max_bytes: int, secrets: list[str]) -> None:
        self.client = client
        self.execution_id = execution_id
        self.max_bytes = max_bytes
        self.secrets = secrets
        self.seq = 0
        self.bytes = 0
        self.truncated = False
        # Lines Redis refused (it was unreachable): persisted straight to the table at the end.
        self.unsent: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def position(self) -> dict[str, Any]:
        """Where this log stands, kept while its execution waits (see ``resume_at``)."""
        with self._lock:
            return {"seq": self.seq, "bytes": self.bytes, "truncated": self.truncated}

    def resume_at(self, position: dict[str, Any] | None) -> None:
        """Go on after the lines written before a wait: same numbering, same cap."""
        if position:
            self.seq = int(position.get("seq", 0))
            self.bytes = int(position.get("bytes", 0))
            self.truncated = bool(position.get("truncated", False))

    def emit(self, stream: str, line: str) -> None:
        with self._lock:
            if self.truncated:
                return  # before masking: a flood past the cap costs as little as possible
        line = replace_unstorable(mask_text(line.rstrip("\r\n"), self.secrets))
        with self._lock:
            if self.truncated:
                return
            size = line_cost(line)
            if self.bytes + size > self.max_bytes:
                self.truncated = True
                stream, line = "system", f"[log truncated: output beyond {self.max_bytes} bytes was dropped]"
            else:
                self.bytes += size
            self.seq += 1
            entry = {"seq": self.seq, "ts": datetime.now(UTC).isoformat(), "stream": stream, "line": line}
            pipe = self.client.pipeline(transaction=False)
            pipe.rpush(log_key(self.execution_id), json.dumps(entry))
            pipe.expire(log_key(self.execution_id), REDIS_TTL_SECONDS)
            if self.truncated:
                pipe.set(truncated_key(self.execution_id), "1", ex=REDIS_TTL_SECONDS)
            try:
                pipe.execute()
            except redis.RedisError:
                # Never fail the action over its log; the line waits in memory instead (the
                # cap bounds it as it bounds the list).
                self.unsent.append(entry)


@dataclass
class LogPage:
    """Lines of one read, and the offset that reads on from there."""

    lines: list[dict[str, Any]]
    next_offset: int


def redis_lines(client: redis.Redis, execution_id: int, after_seq: int = 0,
                limit: int = PERSIST_BATCH) -> list[dict[str, Any]]:
    """At most ``limit`` lines after ``after_seq`` from the Redis list."""
    # seq n sits at list index n-1, so reading after a seq is a range, not a scan.
    raw = client.lrange(log_key(execution_id), after_seq, after_seq + limit - 1)
    return [json.loads(item) for item in raw]


def _redis_pages(client: redis.Redis, execution_id: int) -> Iterable[list[dict[str, Any]]]:
    # By list index, not by seq: the whole list is read once whatever its numbering holds.
    start = 0
    while page := redis_lines(client, execution_id, start, PERSIST_BATCH):
        yield page
        start += len(page)


def persist_lines(client: redis.Redis, execution_id: int, unsent: list[dict[str, Any]] = ()) -> bool:
    """Copy the Redis lines (and ``unsent`` ones) into execution_log_lines (flush only);
    return whether the log was truncated.

    Idempotent: a line already stored (same seq) is skipped, so a retried persist is harmless.
    Reads and writes PERSIST_BATCH lines at a time.
    """
    truncated = False
    try:
        truncated = bool(client.exists(truncated_key(execution_id)))
        for page in _redis_pages(client, execution_id):
            _insert_lines(execution_id, page)
    except redis.RedisError:
        # Redis is down: store what we hold; its lines stay there (with a TTL) and a later
        # persist of the same execution (the sweeper's) would add them without duplicates.
        log.warning("execution %s: log lines in Redis could not be read", execution_id, exc_info=True)
    for start in range(0, len(unsent), PERSIST_BATCH):
        _insert_lines(execution_id, unsent[start:start + PERSIST_BATCH])
    db.session.flush()
    return truncated


def _insert_lines(execution_id: int, lines: list[dict[str, Any]]) -> None:
    rows = [
        {"execution_id": execution_id, "seq": item["seq"], "ts": datetime.fromisoformat(item["ts"]),
         "stream": item["stream"], "line": replace_unstorable(item["line"])}
        for item in lines
    ]
    if rows:
        db.session.execute(insert(ExecutionLogLine).on_conflict_do_nothing(
            index_elements=["execution_id", "seq"]), rows)


def drop_redis_lines(client: redis.Redis, execution_id: int, *other_keys: str) -> None:
    """After the commit that persisted them: Redis may now be flushed without loss."""
    try:
        client.delete(log_key(execution_id), truncated_key(execution_id), *other_keys)
    except redis.RedisError:  # they expire by themselves (REDIS_TTL_SECONDS)
        log.warning("execution %s: Redis keys not deleted", execution_id, exc_info=True)


def stored_lines(execution_id: int, after_seq: int = 0, stream: str | None = None,
                 limit: int = 1000) -> list[dict[str, Any]]:
    query = (
        select(ExecutionLogLine.seq, ExecutionLogLine.ts, ExecutionLogLine.stream, ExecutionLogLine.line)
        .where(ExecutionLogLine.execution_id == execution_id, ExecutionLogLine.seq > after_seq)
        .order_by(ExecutionLogLine.seq)
        .limit(limit)
    )
    if stream:
        query = query.where(ExecutionLogLine.stream == stream)
    return [
        {"seq": row.seq, "ts": row.ts.isoformat(), "stream": row.stream, "line": row.line}
        for row in db.session.execute(query)
    ]


def read_lines(client: redis.Redis, execution_id: int, terminal: bool, after_seq: int = 0,
               stream: str | None = None, limit: int = 1000) -> LogPage:
    """One page after ``after_seq``: from the table once the execution ended, else from Redis.

    At most ``limit`` lines are fetched. With ``stream``, a page from Redis skips the other
    streams' lines among those ``limit`` (so it may hold fewer); ``next_offset`` reads on.
    """
    if not terminal:
        lines = redis_lines(client, execution_id, after_seq, limit)
        if lines or client.exists(log_key(execution_id)):
            next_offset = lines[-1]["seq"] if lines else after_seq
            if stream:
                lines = [item for item in lines if item["stream"] == stream]
            return LogPage(lines, next_offset)
        # No Redis list: nothing written yet, or it just ended and moved to the table.
    lines = stored_lines(execution_id, after_seq, stream, limit)
    return LogPage(lines, lines[-1]["seq"] if lines else after_seq)


# ---- live streams (follow): slots per web process and across all of them -------------------

STREAM_KEYS_PREFIX = "patchbay:follow"
# Slots are leased until their stream must have ended (its lifetime) plus this margin: a web
# process that dies holding one leaks nothing beyond that.
STREAM_LEASE_MARGIN_SECONDS = 10

# Atomic across web processes: drop expired leases, check both caps, lease a slot. Uses the
# Redis server's clock so hosts with skewed clocks agree on expiry.
_TAKE_SLOT = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local deadline = now + tonumber(ARGV[1])
local caps = {tonumber(ARGV[3]), tonumber(ARGV[4])}
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
end
for i = 2, 1, -1 do
  if redis.call('ZCARD', KEYS[i]) >= caps[i] then
    local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {i, tostring(tonumber(first[2]) - now)}
  end
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], deadline, ARGV[2])
  redis.call('EXPIRE', KEYS[i], math.ceil(tonumber(ARGV[1])) + 1)
end
return {0, '0'}
"""
# The identity's cap (KEYS[2]) is checked first: it is the one the caller can act on.
_IDENTITY_CAP = 2


class StreamRefused(Exception):
    """No slot for another live stream; ``retry_after`` is when one is sure to have freed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, math.ceil(retry_after))


class _ProcessSlots:
    """Live streams served by this process: each holds a server thread until it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[str, float] = {}

    def take(self, token: str, deadline: float, capacity: int, now: float) -> float | None:
        """Hold a slot; or return the seconds until the first held one ends, if all are taken."""
        with self._lock:
            if len(self._deadlines) >= capacity:
                return min(self._deadlines.values(), default=now) - now
            self._deadlines[token] = deadline
            return None

    def give_back(self, token: str) -> None:
        with self._lock:
            self._deadlines.pop(token, None)


process_slots = _ProcessSlots()


@dataclass
class StreamSlot:
    """A live stream's place, held from its start until ``release`` (idempotent)."""

    client: redis.Redis
    token: str
    keys: tuple[str, str]
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        process_slots.give_back(self.token)
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self.keys:
                pipe.zrem(key, self.token)
            pipe.execute()
        except redis.RedisError:  # the lease runs out by itself
            log.warning("follow slot %s not released in Redis", self.token, exc_info=True)


def take_stream_slot(client: redis.Redis, identity_id: int, *, lifetime: float, per_identity: int,
                     total: int, per_process: int, now: float) -> StreamSlot:
    """Hold a slot for a live stream lasting at most ``lifetime`` seconds, or raise StreamRefused.

    The Redis leases bound the streams of one identity and of all web processes together;
    ``per_process`` bounds those this web process serves (on threads of their own).
    """
    token = uuid.uuid4().hex
    keys = (f"{STREAM_KEYS_PREFIX}:all", f"{STREAM_KEYS_PREFIX}:identity:{identity_id}")
    refused, wait = client.eval(_TAKE_SLOT, 2, *keys, lifetime + STREAM_LEASE_MARGIN_SECONDS, token,
                                total, per_identity)
    if int(refused):
        message = (f"You already hold {per_identity} live log streams." if int(refused) == _IDENTITY_CAP
                   else f"{total} live log streams are open, the most Patchbay serves at once.")
        # The lease outlives the stream by the margin; the stream itself ends before.
        raise StreamRefused(message, float(wait) - STREAM_LEASE_MARGIN_SECONDS)
    slot = StreamSlot(client, token, keys)
    local_wait = process_slots.take(token, now + lifetime, per_process, now)
    if local_wait is not None:
        slot.release()
        raise StreamRefused(f"This web process already serves as many live log streams as it may ({per_process}).",
                            local_wait)
    return slot
