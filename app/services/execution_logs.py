"""Execution output: a Redis list while the execution runs, table rows once it has ended.

Each line is ``{seq, ts, stream, line}``; ``seq`` counts from 1 and is the same in Redis and
PostgreSQL, so a reader can move from one to the other without losing or repeating lines.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.db import db
from app.engine.unstorable import replace_unstorable
from app.models import ExecutionLogLine
from app.services.masking import mask_text

log = logging.getLogger("patchbay.executions")

STREAMS = ("stdout", "stderr", "system")
# Kept this long if nobody persists it (the sweeper persists abandoned executions' logs).
REDIS_TTL_SECONDS = 7 * 24 * 3600
PERSIST_BATCH = 5000


def log_key(execution_id: int) -> str:
    return f"patchbay:execution:{execution_id}:log"


def truncated_key(execution_id: int) -> str:
    return f"patchbay:execution:{execution_id}:log-truncated"


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

    def emit(self, stream: str, line: str) -> None:
        line = replace_unstorable(mask_text(line.rstrip("\r\n"), self.secrets))
        with self._lock:
            if self.truncated:
                return
            size = len(line.encode("utf-8", "replace"))
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
                # Never fail the action over its log; the line waits in memory instead.
                self.unsent.append(entry)


def redis_lines(client: redis.Redis, execution_id: int, after_seq: int = 0) -> list[dict[str, Any]]:
    # seq n sits at list index n-1, so reading after a seq is a range, not a scan.
    raw = client.lrange(log_key(execution_id), after_seq, -1)
    return [json.loads(item) for item in raw]


def persist_lines(client: redis.Redis, execution_id: int, unsent: list[dict[str, Any]] = ()) -> bool:
    """Copy the Redis lines (and ``unsent`` ones) into execution_log_lines (flush only);
    return whether the log was truncated.

    Idempotent: a line already stored (same seq) is skipped, so a retried persist is harmless.
    """
    try:
        buffered = redis_lines(client, execution_id)
        truncated = bool(client.exists(truncated_key(execution_id)))
    except redis.RedisError:
        # Redis is down: store what we hold; its lines stay there (with a TTL) and a later
        # persist of the same execution (the sweeper's) would add them without duplicates.
        log.warning("execution %s: log lines in Redis could not be read", execution_id, exc_info=True)
        buffered, truncated = [], False
    lines = sorted([*buffered, *unsent], key=lambda item: item["seq"])
    for start in range(0, len(lines), PERSIST_BATCH):
        rows = [
            {"execution_id": execution_id, "seq": item["seq"], "ts": datetime.fromisoformat(item["ts"]),
             "stream": item["stream"], "line": replace_unstorable(item["line"])}
            for item in lines[start:start + PERSIST_BATCH]
        ]
        db.session.execute(insert(ExecutionLogLine).on_conflict_do_nothing(
            index_elements=["execution_id", "seq"]), rows)
    db.session.flush()
    return truncated


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
               stream: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Lines after ``after_seq``: from the table once the execution ended, else from Redis."""
    if not terminal:
        lines = redis_lines(client, execution_id, after_seq)
        if lines or client.exists(log_key(execution_id)):
            if stream:
                lines = [item for item in lines if item["stream"] == stream]
            return lines[:limit]
        # No Redis list: nothing written yet, or it just ended and moved to the table.
    return stored_lines(execution_id, after_seq, stream, limit)
