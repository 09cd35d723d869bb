"""`python -m app.cli release`, the Procfile's release step, on an empty database."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from app.config import ROOT


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def release(database: str, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database, **extra}
    return subprocess.run([sys.executable, "-m", "app.cli", "release"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_release_migrates_bootstraps_and_registers_then_is_idempotent(scratch_database):
    first = release(scratch_database, PATCHBAY_ADMIN_USER="root-admin",
                    PATCHBAY_ADMIN_PASSWORD="correct horse battery staple")
    assert first.returncode == 0, first.stderr
    assert "pack core" in first.stdout
    with psycopg.connect(libpq(scratch_database)) as conn:
        refs = {r for (r,) in conn.execute("SELECT ref FROM actions WHERE pack_name = 'core'")}
        admins = conn.execute(
            "SELECT i.name FROM identities i JOIN role_assignments a ON a.identity_id = i.id "
            "JOIN roles r ON r.id = a.role_id WHERE r.name = 'admin'").fetchall()
    assert {"core.noop", "core.local", "core.local_script", "core.http", "core.echo", "core.ask"} <= refs
    assert admins == [("root-admin",)]

    second = release(scratch_database, PATCHBAY_ADMIN_USER="root-admin",
                     PATCHBAY_ADMIN_PASSWORD="correct horse battery staple")
    assert second.returncode == 0, second.stderr
    with psycopg.connect(libpq(scratch_database)) as conn:
        assert conn.execute("SELECT count(*) FROM actions WHERE pack_name = 'core'").fetchone()[0] == len(refs)
        assert conn.execute("SELECT count(*) FROM identities").fetchone()[0] == 1
