"""Configuration from the environment: URL forms, validation, one clear line on error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.config import ROOT, ConfigError, load_settings

BASE = {
    "DATABASE_URL": "postgres://u:p@db.example:5432/app",
    "REDIS_URL": "redis://localhost:6379/0",
    "VAULT_ADDR": "http://127.0.0.1:8200",
    "VAULT_TOKEN": "t",
    "SECRET_KEY": "x" * 32,
}


def test_heroku_postgres_url_uses_psycopg():
    assert load_settings(BASE)["DATABASE_URL"] == "postgresql+psycopg://u:p@db.example:5432/app"


def test_rediss_url_gets_ssl_cert_reqs():
    settings = load_settings({**BASE, "REDIS_URL": "rediss://:pw@redis.example:6380"})
    assert settings["REDIS_URL"].startswith("rediss://:pw@redis.example:6380?ssl_cert_reqs=")


def test_defaults():
    settings = load_settings(BASE)
    assert settings["PORT"] == 8000 and settings["MAX_BODY_BYTES"] == 1024 * 1024
    assert settings["PACKS_PATH"] == str(ROOT / "packs")


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("DATABASE_URL", None, "DATABASE_URL is not set"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL is invalid"),
        ("REDIS_URL", "http://x", "REDIS_URL is invalid"),
        ("PORT", "eighty", "PORT is invalid"),
        ("PORT", "-1", "PORT is invalid"),
        ("SECRET_KEY", "short", "SECRET_KEY is invalid"),
        ("SECRET_KEY", "x" * 31, "SECRET_KEY is invalid: must be at least 32 characters"),
        ("PROXY_HOPS", "-1", "PROXY_HOPS is invalid"),
        ("PACKS_PATH", "/definitely/not/here", "PACKS_PATH is invalid"),
        ("VAULT_ADDR", "ftp://x", "VAULT_ADDR is invalid"),
    ],
)
def test_bad_settings_name_the_variable(name, value, words):
    env = dict(BASE)
    if value is None:
        env.pop(name)
    else:
        env[name] = value
    with pytest.raises(ConfigError, match=words):
        load_settings(env)


def test_a_process_with_a_missing_setting_stops_with_one_line():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "patchbay: configuration error: DATABASE_URL is not set: PostgreSQL URL (`postgres://` accepted)"
    ]


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL", "VAULT_ADDR", "VAULT_TOKEN"])
def test_each_required_setting_missing_is_one_line_naming_it(name):
    env = {k: v for k, v in BASE.items() if k != name}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert message.startswith(f"{name} is not set: ") and "\n" not in message


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL", "VAULT_ADDR"])
def test_each_required_setting_left_empty_counts_as_missing(name):
    with pytest.raises(ConfigError, match=f"^{name} is not set: "):
        load_settings({**BASE, name: ""})


def test_secret_key_is_needed_to_serve_requests_but_not_by_a_worker(monkeypatch):
    from app import create_app

    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(ConfigError, match="^SECRET_KEY is not set: the web process and the release step need it"):
        create_app()
    worker_app = create_app(serves_requests=False)
    assert worker_app.config["SECRET_KEY"] is None and worker_app.config["JWT_SECRET_KEY"] is None


def test_the_web_process_stops_on_a_configuration_error():
    """gunicorn reboots a worker that exits, forever, unless it exits with APP_LOAD_ERROR."""
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "1", "app.wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "patchbay: configuration error: SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr
