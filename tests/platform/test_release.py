"""`python -m app.cli release`, the Procfile's release step, on an empty database."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app.config import ROOT


@pytest.fixture
def empty_database(database_url_for_tests):
    url = make_url(database_url_for_tests)
    name = f"{url.database}_release"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def release(database: str, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database, **extra}
    return subprocess.run([sys.executable, "-m", "app.cli", "release"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_release_migrates_bootstraps_and_registers_then_is_idempotent(empty_database):
    first = release(empty_database, PATCHBAY_ADMIN_USER="root-admin",
                    PATCHBAY_ADMIN_PASSWORD="correct horse battery staple")
    assert first.returncode == 0, first.stderr
    assert "pack core" in first.stdout
    with psycopg.connect(empty_database) as conn:
        refs = {r for (r,) in conn.execute("SELECT ref FROM actions WHERE pack_name = 'core'")}
        admins = conn.execute(
            "SELECT i.name FROM identities i JOIN role_assignments a ON a.identity_id = i.id "
            "JOIN roles r ON r.id = a.role_id WHERE r.name = 'admin'").fetchall()
    assert {"core.noop", "core.local", "core.local_script", "core.http", "core.echo", "core.ask"} <= refs
    assert admins == [("root-admin",)]

    second = release(empty_database, PATCHBAY_ADMIN_USER="root-admin",
                     PATCHBAY_ADMIN_PASSWORD="correct horse battery staple")
    assert second.returncode == 0, second.stderr
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM actions WHERE pack_name = 'core'").fetchone()[0] == len(refs)
        assert conn.execute("SELECT count(*) FROM identities").fetchone()[0] == 1
