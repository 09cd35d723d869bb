"""Celery's Redis transport (kombu's), publishing through one client object per channel.

kombu's Redis channel builds a new ``redis.Redis`` object for each command it sends outside
its consumer loop — every message published, every task event — and building one (redis-py
fills a table of response callbacks per client) cost the web process more CPU than the
``LPUSH`` it was built for (docs/performance.md). This channel keeps the one it built, on the
same connection pool kombu manages, and builds a new one when kombu replaces the pool (after
a fork or a reconnect). redis-py clients are thread-safe: each command takes a connection
from the pool.

Installed for the ``redis://`` and ``rediss://`` schemes by ``install()``, which every
process calls before it builds a Celery app (app/services/queue.py); the scheme names stay
kombu's, so its handling of ``rediss://`` is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

CLASS_PATH = f"{__name__}:Transport"


class Channel(kombu_redis.Channel):
    _publisher: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        publisher = self._publisher
        if publisher is None or publisher.connection_pool is not self.pool:
            publisher = self._publisher = self._create_client()
        yield publisher


class Transport(kombu_redis.Transport):
    Channel = Channel


def install() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use this transport (idempotent)."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = CLASS_PATH
