"""Test fixtures: real PostgreSQL, Redis and OpenBao, started when not already reachable.

They start on first use (the ``app`` fixture or any test outside tests/engine), so the pure
tests run on a bare checkout with no service at all.

Each test runs inside a transaction that is rolled back (SQLAlchemy's
``join_transaction_mode="create_savepoint"``), so tests are isolated and the service code's
own commits stay real. Tests that need rows visible to another process (a Celery worker)
use the ``committed_db`` fixture, which truncates every table afterwards.
"""

from __future__ import annotations

import functools
import os
import secrets

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.config import ROOT, database_url
from app.devservices import ensure_test_services

# Parallel checkouts on one machine keep apart with PATCHBAY_TEST_NAME (database and Redis db).
TEST_NAME = os.environ.get("PATCHBAY_TEST_NAME", "patchbay_test")
REDIS_DB = os.environ.get("PATCHBAY_TEST_REDIS_DB", "15")


def _database_url() -> str:
    url = make_url(database_url(os.environ["TEST_DATABASE_URL"]))
    return url.set(database=TEST_NAME).render_as_string(hide_password=False)


def _recreate_database(url: str) -> None:
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (TEST_NAME,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_NAME}"')
        conn.execute(f'CREATE DATABASE "{TEST_NAME}"')


@functools.cache
def start_test_services() -> str:
    """Start (or find) PostgreSQL, Redis and OpenBao and point the environment at them, once.

    Called by the first fixture that needs them, so pure tests (tests/engine) start nothing.
    Returns the test database's URL.
    """
    ensure_test_services()
    url = _database_url()
    base_redis = os.environ["TEST_REDIS_URL"].rsplit("/", 1)[0]
    os.environ.update(
        DATABASE_URL=url,
        REDIS_URL=f"{base_redis}/{REDIS_DB}",
        VAULT_ADDR=os.environ["TEST_VAULT_ADDR"],
        VAULT_TOKEN=os.environ["TEST_VAULT_TOKEN"],
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32),
        PACKS_PATH=str(ROOT / "packs"),
        LOG_FORMAT="text",
        LOG_LEVEL="WARNING",
        PATCHBAY_TEST_PREFIX=TEST_NAME,
    )
    return url


PURE_TESTS = ROOT / "tests" / "engine"  # pure logic: no database, Redis or Vault


@pytest.fixture(autouse=True)
def test_environment(request) -> None:
    """Every test outside tests/engine gets the services and the environment pointing at them
    (some read ``os.environ`` or spawn processes without the ``app`` fixture)."""
    if not request.node.path.is_relative_to(PURE_TESTS):
        start_test_services()


@pytest.fixture(scope="session")
def database_url_for_tests() -> str:
    return start_test_services()


@pytest.fixture(scope="session")
def app():
    from app import create_app
    from app.migrate import upgrade

    url = start_test_services()  # the environment is set before the app reads it
    _recreate_database(url)
    upgrade(url)
    application = create_app({"TESTING": True})
    from app.extensions import redis_client

    with application.app_context():
        redis_client().flushdb()
    yield application


@pytest.fixture
def db_session(app):
    """The scoped session, bound to a connection whose outer transaction is rolled back."""
    from app.db import db

    connection = db.engine.connect()
    outer = connection.begin()
    db.session.remove()
    db.session.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield db.session
    finally:
        db.session.remove()
        outer.rollback()
        connection.close()
        db.session.configure(bind=db.engine, join_transaction_mode="conditional_savepoint")


@pytest.fixture
def committed_db(app):
    """Real commits (for other processes to see); every table is emptied afterwards."""
    from app.db import Base, db

    db.session.remove()
    yield db.session
    db.session.remove()
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    # Ids start again at 1: what Redis still holds for executions that never ended (their log
    # lines, cancel flags) would otherwise show up under the next test's executions.
    from app.extensions import redis_client

    with app.app_context():
        client = redis_client()
        stale = list(client.scan_iter("patchbay:execution:*", count=1000))
        if stale:
            client.delete(*stale)


@pytest.fixture(autouse=True)
def fresh_rate_limits(request):
    """Each test using the app starts with no login attempts counted (they live in Redis)."""
    if "app" not in request.fixturenames:
        return  # a pure test: no app, no Redis
    from app.security.ratelimit import limiter

    with request.getfixturevalue("app").app_context():
        limiter.reset()


@pytest.fixture
def ctx(app):
    with app.test_request_context():
        yield


from tests.factories import *  # noqa: E402,F401,F403 - fixtures
from tests.worker import *  # noqa: E402,F401,F403 - the real Celery worker and its clients
