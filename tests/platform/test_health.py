"""/health says the process is alive; /ready checks PostgreSQL, Redis and Vault."""

from __future__ import annotations

import subprocess

import pytest

from app.devservices import bao_binary, free_port, port_open, wait_for_port


def test_health_is_public_and_ok(anonymous):
    response = anonymous.get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_ready_when_everything_is_up(anonymous):
    response = anonymous.get("/ready")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok", "vault": "ok"}


@pytest.fixture
def own_vault(app):
    """A Vault (OpenBao) this test can stop, pointed at by the app for the test."""
    port = free_port()
    while port_open("127.0.0.1", port + 1):
        port = free_port()
    proc = subprocess.Popen([bao_binary(), "server", "-dev", "-dev-root-token-id=t",
                             f"-dev-listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port, "OpenBao")
    previous = app.config["VAULT_ADDR"]
    app.config["VAULT_ADDR"] = f"http://127.0.0.1:{port}"
    yield proc
    app.config["VAULT_ADDR"] = previous
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_ready_is_503_naming_vault_when_vault_stops(anonymous, own_vault):
    import time

    deadline = time.monotonic() + 20
    while anonymous.get("/ready").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert anonymous.get("/ready").status_code == 200
    own_vault.terminate()
    own_vault.wait(10)
    response = anonymous.get("/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["vault"].startswith("unreachable")
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    assert "vault" in body["status"]


def test_ready_is_503_naming_redis_when_redis_is_unreachable(anonymous, app):
    previous = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    try:
        response = anonymous.get("/ready")
    finally:
        app.config["REDIS_URL"] = previous
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"].startswith("unreachable")
    assert "redis" in response.get_json()["status"]


def test_ready_is_503_naming_the_database_when_it_is_unreachable(anonymous):
    from sqlalchemy import create_engine

    from app.db import db

    previous = db.session.session_factory.kw["bind"]
    unreachable = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/patchbay")
    db.session.remove()
    db.session.configure(bind=unreachable)
    try:
        response = anonymous.get("/ready")
    finally:
        db.session.remove()
        db.session.configure(bind=previous)
        unreachable.dispose()
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"].startswith("unreachable")
    assert body["checks"]["redis"] == "ok" and body["checks"]["vault"] == "ok"
    assert body["status"] == "not ready: database unreachable"
    assert anonymous.get("/ready").status_code == 200
