"""Resource exhaustion, tried as an attacker would: an operator floods an execution's log
with empty lines through ``core.local``, and a hundred clients follow live log streams
against the web process as the Procfile runs it, while someone else uses the API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from app.config import ROOT, SETTINGS
from app.devservices import free_port
from app.services.execution_logs import LINE_OVERHEAD_BYTES
from tests.worker import WORKER_ENV, stop_group, wait_for, wait_until_done, wait_until_status

LOG_CAP = int(WORKER_ENV["EXECUTION_LOG_MAX_BYTES"])
FOLLOWERS = 100
FOLLOWER_IDENTITIES = 25  # 4 streams each: FOLLOW_STREAMS_PER_IDENTITY lets every one through to the total cap
API_TIMEOUT = 5  # seconds a client waits for an ordinary answer

pytestmark = pytest.mark.usefixtures("no_stream_slots")


@pytest.fixture
def core_pack(worker_api):
    response = worker_api.post("/api/v1/packs/register", json={"packs": ["core"]})
    assert response.status_code == 200, response.get_json()



DEFAULT_FOLLOW_STREAM_THREADS = int(next(s.default for s in SETTINGS if s.name == "FOLLOW_STREAM_THREADS"))


def test_yes_with_empty_lines_is_stopped_at_the_log_cap(app, operator_api, core_pack):
    from app.db import db
    from app.models import ExecutionLogLine

    created = operator_api.post("/api/v1/actions/core.local/execute",
                                json={"parameters": {"cmd": "yes ''", "timeout": 3}})
    assert created.status_code == 201, created.get_json()

    done = wait_until_done(operator_api, created.get_json()["id"], timeout=60)
    assert done["status"] == "timeout"
    assert done["log_truncated"] is True
    lines = operator_api.get(f"/api/v1/executions/{done['id']}/logs", query_string={"limit": 10000}).get_json()
    assert lines[-1]["stream"] == "system" and "truncated" in lines[-1]["line"]
    kept = [line for line in lines if line["stream"] == "stdout"]
    assert kept and {line["line"] for line in kept} == {""}
    with app.app_context():
        rows = db.session.scalar(select(func.count()).select_from(ExecutionLogLine)
                                 .where(ExecutionLogLine.execution_id == done["id"]))
        db.session.rollback()
    assert len(kept) <= LOG_CAP // LINE_OVERHEAD_BYTES
    assert rows == len(lines) == len(kept) + 1  # and the marker: nothing past it


def procfile_web_command() -> str:
    (line,) = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")]
    return line.split(":", 1)[1].strip()


def test_the_procfile_gives_stream_threads_as_many_as_the_app_serves():
    command = procfile_web_command()
    assert f"--threads $(( ${{WEB_THREADS:-8}} + ${{FOLLOW_STREAM_THREADS:-{DEFAULT_FOLLOW_STREAM_THREADS}}} ))" in command
    assert "--forwarded-allow-ips" not in command


@pytest.fixture
def web(tmp_path):
    """gunicorn as the Procfile's web line runs it (its defaults), on a free port."""
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("WEB_CONCURRENCY", "WEB_THREADS", "FOLLOW_STREAM_THREADS", "FORWARDED_ALLOW_IPS")}
    env.update(PORT=str(port), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["/bin/sh", "-c", f"exec {procfile_web_command()}"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {log_path.read_text()[-3000:]}")
        try:
            return requests.get(f"{base}/health", timeout=2).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # still booting
            return False

    try:
        wait_for(answers, 60, every=0.2)
        yield base, port
    finally:
        stop_group(proc)


@pytest.fixture
def follower_tokens(app, committed_db) -> list[str]:
    """Tokens of many viewers: each may follow any execution's log."""
    from app.models import Identity
    from app.security.tokens import issue_tokens
    from app.services.rbac import assign_role, ensure_builtin_roles

    viewer = ensure_builtin_roles()["viewer"]
    identities = [Identity(name=f"follower-{n}", kind="user", enabled=True) for n in range(FOLLOWER_IDENTITIES)]
    committed_db.add_all(identities)
    committed_db.flush()
    for identity in identities:
        assign_role(identity, viewer)
    committed_db.commit()
    with app.test_request_context():
        return [issue_tokens(identity.id)["access_token"] for identity in identities]


class Stream:
    """One raw HTTP/1.1 follow request; the socket stays open for as long as it is held."""

    def __init__(self, port: int, path: str, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, self.body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
        if "content-length" in self.headers:
            while len(self.body) < int(self.headers["content-length"]):
                self.body += self.sock.recv(65536)

    def close(self) -> None:
        self.sock.close()


def test_a_hundred_followers_do_not_stall_the_api(worker_api, core_pack, web, follower_tokens):
    base, port = web
    created = worker_api.post("/api/v1/actions/core.local/execute",
                              json={"parameters": {"cmd": "echo started; sleep 300", "timeout": 400}}).get_json()
    wait_until_status(worker_api, created["id"], "running")
    path = f"/api/v1/executions/{created['id']}/logs?follow=true"
    admin = {"Authorization": worker_api.headers["Authorization"]}

    with ThreadPoolExecutor(FOLLOWERS) as pool:
        streams = list(pool.map(lambda n: Stream(port, path, follower_tokens[n % FOLLOWER_IDENTITIES]),
                                range(FOLLOWERS)))
    try:
        admitted = [s for s in streams if s.status == 200]
        refused = [s for s in streams if s.status != 200]
        assert 1 <= len(admitted) <= 32  # FOLLOW_STREAMS_TOTAL
        assert refused and {s.status for s in refused} == {429}
        for stream in refused:
            assert int(stream.headers["retry-after"]) >= 1
            assert json.loads(stream.body)["code"] == 429
        assert all(s.headers["content-type"].startswith("text/event-stream") for s in admitted)

        # While the streams are held, anyone else is answered at once.
        for _ in range(10):
            assert requests.get(f"{base}/health", timeout=API_TIMEOUT).status_code == 200
            listed = requests.get(f"{base}/api/v1/executions", headers=admin, timeout=API_TIMEOUT)
            assert listed.status_code == 200 and created["id"] in [e["id"] for e in listed.json()]
            one = requests.get(f"{base}/api/v1/executions/{created['id']}", headers=admin, timeout=API_TIMEOUT)
            assert one.status_code == 200 and one.json()["status"] == "running"
    finally:
        for stream in streams:
            stream.close()

    # The followers went away mid-stream: their slots are free again long before the streams'
    # own 50 s end, so new followers are admitted (as many as one web process serves).
    def admitted_again() -> list[Stream] | None:
        again = [Stream(port, path, token) for token in follower_tokens[:DEFAULT_FOLLOW_STREAM_THREADS]]
        if all(s.status == 200 for s in again):
            return again
        for stream in again:
            stream.close()
        return None

    for stream in wait_for(admitted_again, 30, every=0.5):
        stream.close()
    assert worker_api.post(f"/api/v1/executions/{created['id']}/cancel").status_code == 200
    wait_until_done(worker_api, created["id"])
