"""What the benchmarks share: gunicorn and one worker started as the Procfile starts them,
the app with an admin identity, a ping, percentiles and the plain-Celery baseline on the same
worker."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from app.config import ROOT


def procfile_command(process: str) -> str:
    """The Procfile's command line for ``process`` (run with ``sh -c``, as honcho does)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise LookupError(f"no {process!r} process in the Procfile")


def venv_env(**extra: str) -> dict[str, str]:
    """The environment with this interpreter's bin first, so ``celery``/``gunicorn`` are the venv's."""
    env = {**os.environ, **extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}"
    return env


def start_worker(log_path: Path | None = None) -> tuple[subprocess.Popen, str]:
    """The Procfile's ``worker:`` line (its pool, concurrency, queues, task events), with the
    benchmark's app (Patchbay's tasks plus the plain noop) and a hostname of its own."""
    hostname = f"bench-{os.getpid()}@{socket.gethostname()}"
    command = procfile_command("worker").replace("-A tasks.worker", "-A bench.worker_app")
    command = command.replace("--hostname worker@%h", f"--hostname {hostname}")
    if "bench.worker_app" not in command or hostname not in command:
        raise SystemExit(f"the Procfile's worker line changed shape: {command}")
    with open(log_path or os.devnull, "ab") as output:
        proc = subprocess.Popen(["sh", "-c", command], cwd=ROOT, env=venv_env(), stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, hostname


def run_clients(work: Callable[[list], None], shares: list[list]) -> None:
    """``work(share)`` on one thread per non-empty share, until all are done."""
    threads = [threading.Thread(target=work, args=(share,)) for share in shares if share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web(port: int, log_path: Path) -> subprocess.Popen:
    """The Procfile's ``web:`` line, bound to loopback instead of every address."""
    command = procfile_command("web")
    if "--bind 0.0.0.0:" not in command:
        raise SystemExit(f"the Procfile's web line changed shape: {command}")
    command = command.replace("--bind 0.0.0.0:", "--bind 127.0.0.1:")
    with open(log_path, "ab") as log:
        return subprocess.Popen(["sh", "-c", command], cwd=ROOT, env=venv_env(PORT=str(port)), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_web(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /health")


def stop_process(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_patchbay(app, name: str) -> Iterator[int]:
    """gunicorn and one worker as the Procfile starts them (logs in .patchbay/bench/<name>-*.log),
    ready to serve; yields the web port, stops both on the way out."""
    logs = ROOT / ".patchbay" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    web = start_web(port, logs / f"{name}-web.log")
    worker, hostname = start_worker(logs / f"{name}-worker.log")
    try:
        wait_for_web(port)
        wait_for_worker(app, hostname)
        yield port
    finally:
        stop_process(web)
        stop_process(worker)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def noop_action() -> None:
    """The content ``bench.executions`` needs: a core pack holding only ``core.noop``."""
    from app.db import db
    from app.models import Pack
    from app.services.actions import create_action

    db.session.add(Pack(name="core"))
    db.session.flush()
    create_action({"pack_name": "core", "name": "noop", "runner_type": "noop"})


def setup_app(content: Callable[[], None] = noop_action):
    """Migrate, wipe Redis, add an admin identity ``bench`` and ``content``; (app, auth headers)."""
    from app import create_app
    from app.db import db
    from app.migrate import upgrade
    from app.models import Identity
    from app.security.tokens import issue_tokens
    from app.services.rbac import assign_role, ensure_builtin_roles

    upgrade(os.environ["DATABASE_URL"])
    app = create_app()
    with app.app_context():
        from app.extensions import redis_client

        redis_client().flushdb()
        roles = ensure_builtin_roles()
        identity = Identity(name="bench", kind="user", enabled=True)
        db.session.add(identity)
        db.session.flush()
        assign_role(identity, roles["admin"])
        content()
        db.session.commit()
    with app.test_request_context():
        token = issue_tokens(identity.id)["access_token"]
    return app, {"Authorization": f"Bearer {token}"}


def wait_for_worker(app, hostname: str) -> None:
    from app.services.queue import celery_app

    with app.app_context():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if celery_app().control.ping(timeout=0.5, destination=[hostname]):
                return
        raise SystemExit("the benchmark worker did not answer ping")


def bench_plain_celery(app, n: int) -> tuple[float, list[float]]:
    from app.services.queue import celery_app
    from bench.worker_app import PLAIN_NOOP

    with app.app_context():
        celery = celery_app()
        started = time.perf_counter()
        results = [celery.send_task(PLAIN_NOOP, queue="actions") for _ in range(n)]
        for result in results:
            result.get(timeout=120)
        elapsed = time.perf_counter() - started
        round_trips = []
        for _ in range(min(n, 200)):
            begin = time.perf_counter()
            celery.send_task(PLAIN_NOOP, queue="actions").get(timeout=30)
            round_trips.append((time.perf_counter() - begin) * 1000)
    return n / elapsed, round_trips


class CpuMeter:
    """CPU time (user + system) the processes of a run used, by part: the web (gunicorn on
    ``port``), the worker (``hostname``, its pool included), PostgreSQL (the backends of
    ``database`` and the server's own writers), Redis (the server on the broker's port) and
    this client. ``start()`` then ``per_item(n)``: milliseconds of CPU per item, by part."""

    PARTS = ("web", "worker", "postgres", "redis", "client")

    def __init__(self, port: int | None, hostname: str | None, database: str, redis_port: int | None) -> None:
        self.marks = {"web": f"127.0.0.1:{port}" if port else None, "worker": hostname,
                      "postgres": database, "redis": f":{redis_port}" if redis_port else None}
        self.before: dict[str, float] = {}

    def _part(self, proc) -> str | None:
        if proc.pid == os.getpid():
            return "client"
        line = " ".join(proc.cmdline())
        if self.marks["web"] and "gunicorn" in line and self.marks["web"] in line:
            return "web"
        if self.marks["worker"] and self.marks["worker"] in line:
            return "worker"
        if line.startswith("postgres:") and (self.marks["postgres"] in line or line.endswith(
                ("walwriter", "checkpointer", "background writer"))):
            return "postgres"
        if self.marks["redis"] and "redis-server" in line and self.marks["redis"] in line:
            return "redis"
        return None

    def _sample(self) -> dict[str, float]:
        import psutil

        used = dict.fromkeys(self.PARTS, 0.0)
        for proc in psutil.process_iter():
            try:
                part = self._part(proc)
                if part:
                    times = proc.cpu_times()
                    used[part] += times.user + times.system
            except (psutil.Error, OSError):
                continue
        return used

    def start(self) -> None:
        self.before = self._sample()

    def per_item(self, n: int) -> dict[str, float]:
        after = self._sample()
        return {part: (after[part] - self.before.get(part, 0.0)) * 1000 / n for part in self.PARTS}


def cpu_line(label: str, per_item: dict[str, float]) -> str:
    parts = ", ".join(f"{part} {ms:.1f}" for part, ms in per_item.items() if ms >= 0.05)
    return f"{label}: {parts}; total {sum(per_item.values()):.1f} ms"


def wait_until_ended(app, model, ids: list[int], ended: frozenset[str], columns: tuple,
                     every: float = 0.02, deadline: float = 300) -> list:
    """Wait until every row of ``model`` (executions, events) in ``ids`` has a status in
    ``ended``; their ``columns`` (the first being the id).

    The watcher must not take the CPU it measures: each poll asks for the first row not yet
    ended at or after the last one found (rows end roughly in order), which reads a few index
    entries instead of counting every id again.
    """
    from sqlalchemy import bindparam, select

    from app.db import db

    low, high = min(ids), max(ids)
    first_open = select(model.id).where(
        model.id >= bindparam("cursor"), model.id <= high, model.status.not_in(sorted(ended))
    ).order_by(model.id).limit(1)
    give_up = time.monotonic() + deadline
    cursor = low
    with app.app_context():
        while (found := db.session.scalar(first_open, {"cursor": cursor})) is not None:
            db.session.rollback()
            cursor = found
            if time.monotonic() > give_up:
                raise SystemExit(f"the {model.__tablename__} did not all end in time")
            time.sleep(every)
        rows = db.session.execute(select(*columns).where(model.id.between(low, high))).all()
        db.session.rollback()
    wanted = set(ids)
    rows = [row for row in rows if row[0] in wanted]
    if len(rows) != len(wanted):
        raise SystemExit(f"{len(wanted) - len(rows)} of the {model.__tablename__} have no row")
    return rows
