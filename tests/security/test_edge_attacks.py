"""Attacks at the edge, by a client on the network and by someone who read SECRET_KEY.

The attacker forges ``X-Forwarded-For`` to dodge the login rate limit and to put someone
else's address in the audit log; signs a JWT with SECRET_KEY (read from a worker's
environment, the old signing key); sends a catastrophic regular expression; floods unknown
routes to fill the audit table; and reuses a connection after a body refused for its size.
Each must get nothing: a 429 or 401, the real address audited, a prompt 422, no rows, a
connection closed cleanly.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time

import jwt
import pytest
from sqlalchemy import func, select

from app.config import ROOT
from app.db import db
from app.models import AuditEntry
from app.services.audit import ANONYMOUS_ENTRIES
from tests.auth.conftest import PASSWORD, bearer, behind_one_proxy, proxied_app  # noqa: F401 - fixtures

LOGIN = "/api/v1/auth/login"
HOSTILE_VALUE = "a" * 40 + "!"


def audit_rows(**where) -> list:
    """Entries read on a fresh connection (they commit outside the request's transaction)."""
    query = select(AuditEntry.__table__)
    for name, value in where.items():
        query = query.where(getattr(AuditEntry, name) == value)
    with db.engine.connect() as connection:
        return connection.execute(query).all()


def audit_count() -> int:
    with db.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(AuditEntry))


def login_limit(app) -> int:
    return int(app.config["LOGIN_RATE_LIMIT"].split()[0])


# --- X-Forwarded-For -------------------------------------------------------------------------

def test_a_forged_forwarded_for_neither_escapes_the_login_limit_nor_lands_in_the_audit(
        app, anonymous, create_identity):
    create_identity("wendy", password=PASSWORD)
    anonymous.client.environ_base["REMOTE_ADDR"] = "192.0.2.50"
    for i in range(login_limit(app)):
        answer = anonymous.post(LOGIN, json={"username": f"guess{i}", "password": "not-the-password"},
                                headers={"X-Forwarded-For": f"10.9.8.{i}", "X-Request-ID": f"req-xff-{i}"})
        assert answer.status_code == 401
    # A fresh "address" every time, and the right password: still the same client, still blocked.
    blocked = anonymous.post(LOGIN, json={"username": "wendy", "password": PASSWORD},
                             headers={"X-Forwarded-For": "198.51.100.99", "X-Request-ID": "req-xff-last"})
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers
    for request_id in [f"req-xff-{i}" for i in range(login_limit(app))] + ["req-xff-last"]:
        (entry,) = audit_rows(request_id=request_id)
        assert entry.remote_addr == "192.0.2.50"


def test_behind_one_trusted_proxy_the_hop_it_appended_counts(app, behind_one_proxy,  # noqa: F811
                                                               create_identity):
    create_identity("xavier", password=PASSWORD)
    client = behind_one_proxy()
    # The client writes the first entries; the proxy appends the address it saw.
    for i in range(login_limit(app)):
        answer = client.post(LOGIN, json={"username": f"guess{i}", "password": "not-the-password"},
                             headers={"X-Forwarded-For": f"10.9.8.{i}, 203.0.113.77",
                                      "X-Request-ID": f"req-hop-{i}"})
        assert answer.status_code == 401
    (entry,) = audit_rows(request_id="req-hop-0")
    assert entry.remote_addr == "203.0.113.77"
    blocked = client.post(LOGIN, json={"username": "xavier", "password": PASSWORD},
                          headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.77"})
    assert blocked.status_code == 429
    # Another real client behind the same proxy is not blocked.
    other = client.post(LOGIN, json={"username": "xavier", "password": PASSWORD},
                        headers={"X-Forwarded-For": "203.0.113.78"})
    assert other.status_code == 200


# --- Keys derived from SECRET_KEY -------------------------------------------------------------

def test_a_jwt_forged_with_secret_key_is_refused(app, anonymous, create_identity):
    admin = create_identity("root-ish", roles=["admin"])
    now = int(time.time())
    claims = {"sub": str(admin.id), "type": "access", "fresh": True, "jti": "forged-1", "iat": now,
              "nbf": now, "exp": now + 600, "pb_iat": time.time()}
    # What an attacker who read SECRET_KEY from a process environment would sign.
    forged = jwt.encode(claims, os.environ["SECRET_KEY"], algorithm="HS256")
    answer = anonymous.get("/api/v1/identities", headers=bearer(forged))
    assert answer.status_code == 401
    assert answer.json["message"] == "The token is not valid or has expired."
    assert anonymous.post("/api/v1/roles", json={"name": "pwned"}, headers=bearer(forged)).status_code == 401


# --- Catastrophic regular expressions ----------------------------------------------------------

def timed(call):
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def test_a_catastrophic_pattern_cannot_hang_action_creation_update_or_execute(api, create_pack):
    create_pack("redos")
    slow = {"type": "string", "pattern": "^(a|a)*$"}
    created, took = timed(lambda: api.post("/api/v1/actions", json={
        "pack": "redos", "name": "bad_default", "runner_type": "noop",
        "parameters": {"word": {**slow, "default": HOSTILE_VALUE}}}))
    assert took < 3 and created.status_code == 422
    (message,) = created.json["errors"]["parameters"]["word"]
    assert "'default' does not match the definition" in message and "in time" in message

    # The pattern itself is legal; matching it against a hostile value is what is bounded.
    assert api.post("/api/v1/actions", json={"pack": "redos", "name": "victim", "runner_type": "noop",
                                             "parameters": {"word": slow}}).status_code == 201
    updated, took = timed(lambda: api.patch("/api/v1/actions/redos.victim", json={
        "parameters": {"word": {**slow, "default": HOSTILE_VALUE}}}))
    assert took < 3 and updated.status_code == 422
    assert "in time" in updated.json["errors"]["parameters"]["word"][0]

    for pattern in ("^(a|a)*$", "^(a+)+$"):
        assert api.patch("/api/v1/actions/redos.victim",
                         json={"parameters": {"word": {"type": "string", "pattern": pattern}}}).status_code == 200
        executed, took = timed(lambda: api.post("/api/v1/actions/redos.victim/execute",
                                                json={"parameters": {"word": HOSTILE_VALUE}}))
        assert took < 3 and executed.status_code == 422, executed.json
        (message,) = executed.json["errors"]["parameters"]["word"]
        assert "in time" in message or "does not match" in message
    assert api.get("/api/v1/executions?action=redos.victim").json == []


def test_a_pattern_too_large_to_compile_is_refused(api, create_pack):
    create_pack("bigre")
    answer, took = timed(lambda: api.post("/api/v1/actions", json={
        "pack": "bigre", "name": "huge", "runner_type": "noop",
        "parameters": {"word": {"type": "string", "pattern": "(?:a{65535}){65535}"}}}))
    assert took < 3 and answer.status_code == 422
    (message,) = answer.json["errors"]["parameters"]["word"]
    assert "repeats too much" in message


# --- The audit table -------------------------------------------------------------------------

def test_an_anonymous_flood_of_unknown_routes_writes_no_audit_rows(anonymous, api):
    before = audit_count()
    for i in range(60):
        anonymous.post(f"/api/v1/nowhere-{i}", json={"x": i})
        anonymous.delete(f"/api/v1/actions/x.y/nothing/{i}")
        anonymous.put("/api/v1/actions", json={})  # 405: the route exists, the method does not
        anonymous.post(f"/api/v1/junk/{i}", headers={"Authorization": "Bearer not-a-token"})
        anonymous.post(f"/api/v1/junk/{i}", headers={"X-API-Key": "pbk_000000000000_guess"})
    assert audit_count() == before
    # A caller with credentials on an unknown route is still audited.
    answer = api.post("/api/v1/nowhere", headers={"X-Request-ID": "req-edge-unrouted"})
    assert answer.status_code == 404
    (entry,) = audit_rows(request_id="req-edge-unrouted")
    assert (entry.actor, entry.action, entry.status_code) == ("admin", "unrouted", 404)


def test_anonymous_rows_on_real_routes_are_bounded_per_address(anonymous, api):
    budget = ANONYMOUS_ENTRIES.amount
    before = audit_count()
    for i in range(budget + 40):
        assert anonymous.post("/api/v1/roles", json={"name": f"r{i}"}).status_code == 401
    assert audit_count() - before == budget
    # The budget is for unauthenticated callers only: an admin's call is still audited.
    assert api.post("/api/v1/roles", json={"name": "audited-role"},
                    headers={"X-Request-ID": "req-edge-after-flood"}).status_code == 201
    (entry,) = audit_rows(request_id="req-edge-after-flood")
    assert entry.actor == "admin"


# --- 413 through gunicorn -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def web_command(port: int) -> str:
    """The Procfile's web line, bound to loopback only."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    return line.removeprefix("web:").strip().replace("0.0.0.0:", "127.0.0.1:")


@pytest.fixture
def web_server(app):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1",
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(["bash", "-c", "exec " + web_command(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if b" 200 " in exchange(port, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")[0]:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"gunicorn did not start: {process.stderr.read().decode()[-2000:]}\n{shlex.quote(web_command(port))}")
        time.sleep(0.2)
    yield port
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def exchange(port: int, request: bytes, body: bytes = b"") -> tuple[bytes, bool]:
    """Send one request on a new connection; (what came back, whether the server closed it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        try:
            connection.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before reading it all; its answer is still to be read
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                return received, True
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        length = int(next((line.split(b":", 1)[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), b"0"))
        while len(rest) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            rest += chunk
        connection.settimeout(0.5)  # under gunicorn's keep-alive timeout (2 s)
        try:
            closed = connection.recv(1) == b""
        except TimeoutError:
            closed = False
        return head + b"\r\n\r\n" + rest, closed


def test_an_oversized_body_gets_413_and_the_connection_closes(web_server):
    body = b"x" * (2 * 1024 * 1024)
    for _ in range(5):
        answer, closed = exchange(web_server, (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)), body)
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 413 ")
        assert b"\r\nconnection: close" in head and b"keep-alive" not in head
        assert b"larger than the limit" in answer
        assert closed
        # The next request, on a new connection, is served.
        health, _ = exchange(web_server, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert health.startswith(b"HTTP/1.1 200 ")
    # A body within the limit keeps the connection open as before.
    small, closed = exchange(web_server, b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\n"
                                         b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n", b"{}")
    assert b"connection: keep-alive" in small.lower() and not closed
