"""The first admin: from the environment, generated once by the release step, or typed in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.config import ROOT, ConfigError
from app.services.bootstrap import bootstrap_admin

GOOD_PASSWORD = "first-admin-passphrase-9"


@pytest.fixture
def admin_env(app):
    """Set PATCHBAY_ADMIN_USER / _PASSWORD on the app for one test."""
    saved = {k: app.config.get(k) for k in ("PATCHBAY_ADMIN_USER", "PATCHBAY_ADMIN_PASSWORD")}

    def set_env(user: str = "", password: str = "") -> None:
        app.config.update(PATCHBAY_ADMIN_USER=user, PATCHBAY_ADMIN_PASSWORD=password)

    yield set_env
    app.config.update(saved)


def run_bootstrap(app, db_session, generate: bool) -> list[str]:
    with app.app_context():
        lines = list(bootstrap_admin(generate=generate))
        db_session.commit()
    return lines


def test_the_admin_comes_from_the_environment(app, db_session, admin_env, login):
    admin_env("root", GOOD_PASSWORD)
    lines = run_bootstrap(app, db_session, generate=False)
    assert lines == ["admin: created 'root' from PATCHBAY_ADMIN_USER"]
    assert GOOD_PASSWORD not in "".join(lines)
    tokens = login("root", GOOD_PASSWORD)
    assert tokens.status_code == 200
    # Once an admin exists, the release step leaves things alone.
    admin_env("someone-else", GOOD_PASSWORD)
    assert run_bootstrap(app, db_session, generate=True) == ["admin: an enabled admin exists; nothing to do"]
    assert login("someone-else", GOOD_PASSWORD).status_code == 401


def test_a_generated_password_is_printed_once_and_works(app, db_session, admin_env, login):
    admin_env()
    (line,) = run_bootstrap(app, db_session, generate=True)
    assert line.startswith("admin: created 'admin' with the generated password ")
    password = line.split("generated password ")[1].split()[0]
    assert len(password) >= 20
    me = login("admin", password)
    assert me.status_code == 200
    assert run_bootstrap(app, db_session, generate=True) == ["admin: an enabled admin exists; nothing to do"]


def test_without_settings_or_generate_it_says_what_to_do(app, db_session, admin_env):
    admin_env()
    (line,) = run_bootstrap(app, db_session, generate=False)
    assert "PATCHBAY_ADMIN_USER" in line and "create-admin" in line


def test_a_weak_or_half_given_admin_password_fails_the_release(app, db_session, admin_env):
    admin_env("root", "password1234")
    with pytest.raises(ConfigError, match="PATCHBAY_ADMIN_PASSWORD is invalid"):
        run_bootstrap(app, db_session, generate=True)
    admin_env("root", "")
    with pytest.raises(ConfigError, match="must be set together"):
        run_bootstrap(app, db_session, generate=True)


def _create_admin_cli(typed: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "create-admin"], input=typed, text=True,
                          capture_output=True, cwd=ROOT, env=dict(os.environ), timeout=60)


def test_the_create_admin_command_prompts_with_confirmation(committed_db, anonymous):
    weak = _create_admin_cli("ops\nshort\nshort\n")
    assert weak.returncode == 1 and "Use at least 12 characters" in weak.stderr
    mismatch = _create_admin_cli(f"ops\n{GOOD_PASSWORD}\nsomething-else-entirely\n")
    assert mismatch.returncode != 0 and "do not match" in (mismatch.stdout + mismatch.stderr).lower()
    done = _create_admin_cli(f"ops\n{GOOD_PASSWORD}\n{GOOD_PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    assert "admin 'ops' is ready" in done.stdout and GOOD_PASSWORD not in done.stdout
    tokens = anonymous.post("/api/v1/auth/login", json={"username": "ops", "password": GOOD_PASSWORD})
    assert tokens.status_code == 200
    me = anonymous.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens.json['access_token']}"})
    assert me.json["roles"] == ["admin"]
