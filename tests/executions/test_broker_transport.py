"""Celery publishes through Patchbay's Redis transport (app/services/redis_transport.py): kombu's,
keeping one client object per channel instead of building one per message.

The broker here is a Redis database no worker reads, so what was sent stays countable.
"""

from __future__ import annotations

import json

import pytest

from app.services import queue, redis_transport


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_both_redis_schemes_use_the_transport(app, scheme):
    from kombu import Connection

    connection = Connection(f"{scheme}://127.0.0.1:6379/0")
    assert connection.transport_cls == scheme  # kombu still sees the scheme (rediss keeps TLS)
    assert isinstance(connection.transport, redis_transport.Transport)


def test_messages_go_out_whole_through_one_client(app, quiet_broker):
    with app.app_context():
        ids = [queue.send(queue.RUN_EXECUTION, [n], summary=f"execution={n}") for n in (101, 102, 103)]
        with queue.celery_app().connection_for_write() as connection:
            channel = connection.default_channel
            with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
                assert isinstance(channel, redis_transport.Channel)
                assert first is second
                assert first.ping()

    raw = quiet_broker.lrange(queue.ACTIONS_QUEUE, 0, -1)
    messages = [json.loads(item) for item in raw]
    assert sorted(m["headers"]["id"] for m in messages) == sorted(ids)
    assert {m["headers"]["task"] for m in messages} == {queue.RUN_EXECUTION}
    assert sorted(m["headers"]["argsrepr"] for m in messages) == [
        "execution=101", "execution=102", "execution=103"]
