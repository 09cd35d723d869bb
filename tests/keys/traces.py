"""Searching for a planted secret in every form it can take, everywhere Patchbay writes."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from urllib.parse import quote

import redis
from sqlalchemy import text


def base64_runs(value: bytes) -> set[str]:
    """The base64 text of ``value`` at each of the three alignments it can have inside a
    longer encoded text (a Celery message body): only the characters ``value`` alone decides."""
    runs = set()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + value).decode()
        start = -(-8 * pad // 6)  # characters holding a bit of the padding
        end = 8 * (pad + len(value)) // 6  # the last one may hold bits of what follows
        run = encoded[start:end]
        runs |= {run, run.replace("+", "-").replace("/", "_")}
    return runs


def trace_forms(secret: str) -> set[str]:
    """The secret as given, JSON-escaped (alone and inside an escaped JSON text), URL-quoted,
    hex, and base64 at every alignment."""
    raw = secret.encode()
    return {secret, json.dumps(secret)[1:-1], json.dumps(json.dumps(secret))[3:-3], quote(secret, safe=""),
            raw.hex(), *base64_runs(raw)}


def found_in(haystack: str | bytes, forms: set[str]) -> list[str]:
    """The forms that occur in ``haystack``."""
    if isinstance(haystack, bytes):
        haystack = haystack.decode("utf-8", errors="replace")
    return sorted(form for form in forms if form in haystack)


def database_rows(connection) -> dict[str, list[str]]:
    """Every row of every table in the public schema as text, by table (information_schema
    names them; a row cast to text holds each of its columns)."""
    tables = connection.execute(text(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE' ORDER BY table_name")).scalars().all()
    return {table: connection.execute(text(f'SELECT t::text FROM "{table}" t')).scalars().all() for table in tables}


def text_columns(connection) -> list[tuple[str, str]]:
    """(table, column) of every text, JSON or binary column of the public schema."""
    return [tuple(row) for row in connection.execute(text(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY') "
        "ORDER BY table_name, column_name")).all()]


def redis_dump(client: redis.Redis) -> dict[bytes, bytes]:
    """Every key of the client's database with its value, whatever its type."""
    dump: dict[bytes, bytes] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value = repr(client.get(key))
        elif kind == "list":
            value = repr(client.lrange(key, 0, -1))
        elif kind == "hash":
            value = repr(client.hgetall(key))
        elif kind == "set":
            value = repr(client.smembers(key))
        elif kind == "zset":
            value = repr(client.zrange(key, 0, -1, withscores=True))
        elif kind == "stream":
            value = repr(client.xrange(key, "-", "+"))
        else:  # gone meanwhile
            value = ""
        dump[key] = value.encode()
    return dump


class RedisMonitor:
    """Records every command the Redis server runs (MONITOR) from ``start`` to ``stop``: the
    broker messages, results, events and log lines as they pass, though consumed since."""

    def __init__(self, url: str) -> None:
        self.url = url
        # No read timeout: redis-py drops a connection whose read timed out, which ended the
        # recording at the first half second without a command. The marker ``stop`` sends
        # is the command that always comes.
        self.client = redis.Redis.from_url(url)
        self.commands: list[str] = []
        self._end: str | None = None  # the marker command that ends the recording
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RedisMonitor:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("MONITOR did not start")
        return self

    def _run(self) -> None:
        try:
            with self.client.monitor() as monitor:
                self._ready.set()
                while True:
                    command = monitor.next_command()["command"]
                    if self._end is not None and self._end in command:
                        return  # every command sent before the marker has been read
                    self.commands.append(command)
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self._failed = exc

    def stop(self) -> list[str]:
        """Everything Redis ran until now: a marker command is sent last, and the recording
        ends once MONITOR has passed it on (commands still in flight are not lost)."""
        if self._thread.is_alive():
            self._end = f"monitor-end-{uuid.uuid4().hex}"
            redis.Redis.from_url(self.url).echo(self._end)
            self._thread.join(10)
        if self._failed is not None:
            raise RuntimeError(f"MONITOR stopped early: {self._failed!r}")
        if self._thread.is_alive():
            raise RuntimeError("MONITOR did not pass the end marker on within 10 s")
        return self.commands
