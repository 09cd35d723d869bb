"""An OpenBao server of a test's own, with raft storage on disk: it can be stopped and started
again with its data, unlike the session's dev server (in memory) that other tests share.

Initialised once through the HTTP API (one unseal key), unsealed at every start, KV v2
mounted at ``secret/`` as in dev mode. The root token and the unseal key stay in memory.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import requests

from app.devservices import bao_binary, free_port, port_open


class OwnVault:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        (data_dir / "raft").mkdir(exist_ok=True)
        self.port = free_port()
        cluster_port = free_port()
        while cluster_port == self.port:
            cluster_port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.config = data_dir / "config.hcl"
        self.config.write_text(
            f'storage "raft" {{\n  path = "{data_dir / "raft"}"\n  node_id = "own"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
            f'  cluster_address = "127.0.0.1:{cluster_port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{self.address}"\ncluster_addr = "http://127.0.0.1:{cluster_port}"\n'
            'disable_mlock = true\n'
        )
        self.proc: subprocess.Popen | None = None
        self.root_token = ""
        self.unseal_key = ""
        self.log_path = data_dir / "bao.log"

    # Life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(fd, "ab") as log:
            self.proc = subprocess.Popen([bao_binary(), "server", f"-config={self.config}"], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait(lambda: port_open("127.0.0.1", self.port), "listening")
        if not self._get("/v1/sys/init").json()["initialized"]:
            answer = requests.put(f"{self.address}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1},
                                  timeout=30)
            answer.raise_for_status()
            self.unseal_key, self.root_token = answer.json()["keys"][0], answer.json()["root_token"]
        requests.put(f"{self.address}/v1/sys/unseal", json={"key": self.unseal_key}, timeout=10).raise_for_status()
        # Active (raft leader elected) once health answers 200.
        self._wait(lambda: self._health() == 200, "active")
        mounts = self._get("/v1/sys/mounts", token=True).json()
        if "secret/" not in mounts.get("data", mounts):
            requests.post(f"{self.address}/v1/sys/mounts/secret", headers=self.headers,
                          json={"type": "kv", "options": {"version": "2"}}, timeout=10).raise_for_status()
            self._wait(self._kv_ready, "KV v2 ready")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
        self._wait(lambda: not port_open("127.0.0.1", self.port), "stopped")

    # HTTP ----------------------------------------------------------------------------------

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Vault-Token": self.root_token}

    def _get(self, path: str, token: bool = False) -> requests.Response:
        return requests.get(f"{self.address}{path}", headers=self.headers if token else {}, timeout=10)

    def _health(self) -> int | None:
        try:
            return self._get("/v1/sys/health").status_code
        except requests.RequestException:
            return None

    def _kv_ready(self) -> bool:
        # A new KV v2 mount upgrades itself for a moment before it takes writes.
        answer = requests.post(f"{self.address}/v1/secret/data/readiness-probe", headers=self.headers,
                               json={"data": {"ok": "1"}}, timeout=10)
        return answer.status_code == 200

    def _wait(self, predicate, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"OpenBao exited: {self.log_path.read_text()[-2000:]}")
            if predicate():
                return
            time.sleep(0.1)
        raise RuntimeError(f"OpenBao at {self.address} not {what} within {timeout} s: "
                           f"{self.log_path.read_text()[-2000:]}")
