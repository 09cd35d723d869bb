"""A real Celery worker for the tests that run actions, and clients whose rows it can see.

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
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import redis
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
def worker_packs_path() -> Path:
    """The worker's own PACKS_PATH: packs are found on each host, relative to it.

    Outside pytest's private temp dirs (0700), as a deploy ships packs readable by all
    users: with uid isolation the action's own uid must read its pack's files.
    """
    path = Path(tempfile.mkdtemp(prefix="patchbay-worker-packs-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def readable_by_all(path: Path) -> None:
    """chmod -R o+rX: what a deploy does to the packs it ships."""
    for root, _dirs, files in os.walk(path):
        os.chmod(root, os.stat(root).st_mode | 0o755)
        for name in files:
            file = os.path.join(root, name)
            os.chmod(file, os.stat(file).st_mode | 0o444 | (0o111 if os.stat(file).st_mode & 0o100 else 0))


def spawn_worker(app, log_path: Path, name: str, packs_path: Path, *, queues: str = "actions,events,celery",
                 concurrency: int = 2, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``celery worker`` named ``name@<host>`` in its own session; return once it answers ping."""
    # A worker signs no tokens: it runs without SECRET_KEY, so action code cannot find it there.
    env = {name: value for name, value in os.environ.items() if name != "SECRET_KEY"}
    env = {**env, **WORKER_ENV, "PACKS_PATH": str(packs_path), **(extra_env or {})}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.worker_app", "worker", "-Q", queues,
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


def _committed_client(app, session, name: str, role: str) -> ApiClient:
    from app.models import Identity
    from app.security.tokens import issue_tokens
    from app.services.rbac import assign_role, ensure_builtin_roles

    roles = ensure_builtin_roles()
    identity = Identity(name=name, kind="user", enabled=True)
    session.add(identity)
    session.flush()
    assign_role(identity, roles[role])
    session.commit()
    with app.test_request_context():
        token = issue_tokens(identity.id)["access_token"]
    return ApiClient(app.test_client(), {"Authorization": f"Bearer {token}"})


@pytest.fixture
def worker_api(app, committed_db, celery_worker) -> ApiClient:
    """An admin client whose writes are committed, with the worker running."""
    return _committed_client(app, committed_db, "exec-admin", "admin")


@pytest.fixture
def operator_api(app, committed_db, celery_worker) -> ApiClient:
    """A client with the built-in operator role (may execute actions): the attacker of
    tests/security, whose writes are committed, with the worker running."""
    return _committed_client(app, committed_db, "exec-operator", "operator")


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
            readable_by_all(worker_packs_path / pack_name)
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

    try:
        return wait_for(reached, timeout)
    except AssertionError:
        body = api.get(f"/api/v1/executions/{execution_id}").get_json()
        raise AssertionError(f"execution {execution_id} not {sorted(statuses)} within {timeout} s: "
                             f"{ {k: body.get(k) for k in ('status', 'waiting_on', 'error', 'result')} }") from None


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


FLOWER_AUTH = ("ops", "flower-pass-123")


def procfile_command(process: str) -> str:
    """The Procfile's command line for ``process`` (run it with ``sh -c``, as honcho does)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise LookupError(f"no {process!r} process in the Procfile")


@pytest.fixture
def flower(celery_worker, tmp_path):
    """Flower started from the Procfile's line, its credentials in FLOWER_BASIC_AUTH."""
    import requests

    from app.devservices import free_port

    port = free_port()
    env = {**os.environ, "FLOWER_PORT": str(port), "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(tmp_path / "flower.log", "wb") as log:
        proc = subprocess.Popen(["/bin/sh", "-c", procfile_command("flower")], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(f"{url}/healthcheck", timeout=1).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(answers, 30, every=0.2)
        yield url
    finally:
        stop_group(proc)


@pytest.fixture
def action_tmp():
    """A directory actions may write to and the test may read: with uid isolation the
    action is another user, and pytest's own temp dirs are private (0700)."""
    path = Path(tempfile.mkdtemp(prefix="patchbay-action-tmp-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def marker(action_tmp):
    """A path an attack's payload would create: its absence is the proof nothing ran."""
    return action_tmp / "pwned"


@pytest.fixture
def core_pack(app, committed_db, worker_packs_path):
    """The built-in core pack registered from its real YAML and shipped to the worker."""
    from app.services.pack_loader import register_pack

    shutil.copytree(ROOT / "packs" / "core", worker_packs_path / "core", dirs_exist_ok=True)
    readable_by_all(worker_packs_path / "core")
    with app.app_context():
        register_pack("core")
        committed_db.commit()


@pytest.fixture
def no_stream_slots(app):
    """Live-stream leases are shared Redis state: none left over for the next test."""
    yield
    from app.extensions import redis_client
    from app.services.execution_logs import STREAM_KEYS_PREFIX

    with app.app_context():
        client = redis_client()
        for key in client.scan_iter(f"{STREAM_KEYS_PREFIX}:*"):
            client.delete(key)


# A Redis database no worker reads: what is sent there stays countable.
QUIET_BROKER_DB = 14


@pytest.fixture
def quiet_broker(app, committed_db):
    """Point the app at the quiet broker database; yield a client on it."""
    saved = app.config["REDIS_URL"]
    url = f"{saved.rsplit('/', 1)[0]}/{QUIET_BROKER_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    app.config["REDIS_URL"] = url
    try:
        yield client
    finally:
        app.config["REDIS_URL"] = saved
        client.flushdb()
