"""Pooled connections: one that sat idle is checked before use, so a PostgreSQL restart (or
a proxy closing idle connections) costs nobody an error; one used moments ago is not pinged."""

from __future__ import annotations

import importlib

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

# The module (``app.db`` as an attribute is the Database object the package re-exports).
app_db = importlib.import_module("app.db")


@pytest.fixture
def engine(app):
    database = app_db.Database()
    database.init(app.config["DATABASE_URL"], pool_size=1, max_overflow=0)
    yield database.engine
    database.engine.dispose()


def backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def terminate(app, pid: int) -> None:
    dsn = app.config["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_an_idle_connection_closed_by_the_server_is_replaced_before_use(app, engine, monkeypatch):
    first = backend_pid(engine)
    terminate(app, first)
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle "long enough"

    second = backend_pid(engine)

    assert second != first


def test_a_connection_used_moments_ago_is_not_pinged(app, engine, monkeypatch):
    # The same situation without the idle check: the dead connection is handed out as is,
    # which is what the ping prevents (and why it is only skipped for fresh ones).
    first = backend_pid(engine)
    terminate(app, first)
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE_SECONDS", 3600.0)

    with pytest.raises(OperationalError):
        backend_pid(engine)
    assert backend_pid(engine) != first  # the pool then replaces it
