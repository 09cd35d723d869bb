"""A real Celery worker for the execution tests, and clients whose rows it can see.

The worker is a subprocess (``celery -A tasks.worker worker``) sharing the environment the
root conftest set (database, Redis db, OpenBao), with short heartbeat/abandon ages so a
killed worker is noticed within seconds. Tests that use it commit (``committed_db``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from app.config import ROOT
from tests.factories import ApiClient

WORKER_ENV = {
    "HEARTBEAT_SECONDS": "1",
    "ABANDON_AFTER_SECONDS": "4",
    "REQUEUE_AFTER_SECONDS": "2",
    "EXECUTION_LOG_MAX_BYTES": "2000",
    "LOG_LEVEL": "INFO",
}
TERMINAL = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


@pytest.fixture(scope="session")
def worker_packs_path(tmp_path_factory) -> Path:
    """The worker's own PACKS_PATH: packs are found on each host, relative to it."""
    return tmp_path_factory.mktemp("worker-packs")


def spawn_worker(app, log_path: Path, name: str, packs_path: Path, *, queues: str = "actions,events,celery",
                 concurrency: int = 2, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``celery worker`` named ``name@<host>`` in its own session; return once it answers ping."""
    env = {**os.environ, **WORKER_ENV, "PACKS_PATH": str(packs_path), **(extra_env or {})}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "-Q", queues,
             "--pool", "prefork", "-c", str(concurrency), "--hostname", f"{name}@%h", "--loglevel", "INFO", "-E",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    from app.services.queue import celery_app

    with app.app_context():
        control = celery_app().control
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the Celery worker exited: {log_path.read_text()[-3000:]}")
            if control.ping(timeout=0.5, destination=[worker_name(name)]):
                return proc
        stop_group(proc)
        pytest.fail(f"the Celery worker did not answer ping: {log_path.read_text()[-3000:]}")


def worker_name(name: str) -> str:
    return f"{name}@{_hostname()}"


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture(scope="session")
def celery_worker(app, tmp_path_factory, worker_packs_path):
    """Start the worker, wait until it answers ping, kill it (and its pool) at the end."""
    log_path: Path = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = spawn_worker(app, log_path, f"pytest-{os.getpid()}", worker_packs_path)
    yield WorkerHandle(proc, log_path)
    stop_group(proc)


def _hostname() -> str:
    import socket

    return socket.gethostname()


class WorkerHandle:
    def __init__(self, proc: subprocess.Popen, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def pool_children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def worker_api(app, committed_db, celery_worker) -> ApiClient:
    """An admin client whose writes are committed, with the worker running."""
    from app.models import Identity
    from app.security.tokens import issue_tokens
    from app.services.rbac import assign_role, ensure_builtin_roles

    roles = ensure_builtin_roles()
    identity = Identity(name="exec-admin", kind="user", enabled=True)
    committed_db.add(identity)
    committed_db.flush()
    assign_role(identity, roles["admin"])
    committed_db.commit()
    with app.test_request_context():
        token = issue_tokens(identity.id)["access_token"]
    return ApiClient(app.test_client(), {"Authorization": f"Bearer {token}"})


@pytest.fixture
def make_action(app, committed_db, worker_packs_path):
    """make_action("demo.sleep", "local-shell-cmd", parameters=..., ...) -> ref (committed).

    ``pack_path``: a directory with the pack's files, copied under the worker's PACKS_PATH
    (as a deploy ships packs to every host); the pack row stores the relative path.
    """
    from app.models import Pack
    from app.services.actions import create_action

    def make(ref: str, runner_type: str = "noop", pack_path: str | None = None, **fields) -> str:
        pack_name, _, name = ref.partition(".")
        if pack_path is not None:
            shutil.copytree(pack_path, worker_packs_path / pack_name, dirs_exist_ok=True)
        if committed_db.scalar(select(Pack).where(Pack.name == pack_name)) is None:
            committed_db.add(Pack(name=pack_name, path=pack_name if pack_path is not None else None))
            committed_db.flush()
        create_action({"pack_name": pack_name, "name": name, "runner_type": runner_type, **fields})
        committed_db.commit()
        return ref

    return make


def wait_for(predicate, timeout: float = 30, every: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def wait_until_status(api: ApiClient, execution_id: int, statuses, timeout: float = 30) -> dict:
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)

    def reached():
        body = api.get(f"/api/v1/executions/{execution_id}").get_json()
        return body if body["status"] in statuses else None

    return wait_for(reached, timeout)


def wait_until_done(api: ApiClient, execution_id: int, timeout: float = 30) -> dict:
    return wait_until_status(api, execution_id, TERMINAL, timeout)


class RecordingServer:
    """A local HTTP server (in a thread) that records requests and answers 201 with JSON."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        server = self
        self.requests: list[tuple[str, str, object]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                server.requests.append(("POST", self.path, body))
                answer = json.dumps({"created": (body or {}).get("name")}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    server = RecordingServer()
    yield server
    server.close()
