"""What every benchmark starts with: the services, a fresh database of its own, the env."""

from __future__ import annotations

import os
import secrets

import psycopg
from sqlalchemy.engine import make_url

from app.config import database_url
from app.devservices import ensure_test_services


def prepare_environment(database: str) -> str:
    """Start/reuse services, recreate ``database``, point the environment at it.

    Returns a libpq URL of the database (for psycopg).
    """
    ensure_test_services()
    url = make_url(database_url(os.environ["TEST_DATABASE_URL"])).set(database=database)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    base_redis = os.environ["TEST_REDIS_URL"].rsplit("/", 1)[0]
    os.environ.update(
        DATABASE_URL=url.render_as_string(hide_password=False),
        REDIS_URL=f"{base_redis}/{os.environ.get('PATCHBAY_BENCH_REDIS_DB', '13')}",
        VAULT_ADDR=os.environ["TEST_VAULT_ADDR"], VAULT_TOKEN=os.environ["TEST_VAULT_TOKEN"],
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32),
        LOG_LEVEL="WARNING", LOG_FORMAT="text",
    )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
