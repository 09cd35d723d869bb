"""Server-side request forgery, tried through the API by an operator against a real worker.

The attacker points ``core.http`` at loopback, the cloud metadata address and internal
addresses, in every spelling that reaches them (a name, a decimal or hex or octal number,
an IPv4-mapped IPv6 literal), and bounces a request off an allowed server into a loopback
one with a redirect. Each execution must fail saying which host was refused and why, and the
local target must not see even a TCP connection.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from app.models import Execution
from tests.worker import wait_until_done

ALLOW_HINT = "; allow it with HTTP_ALLOWED_NETWORKS or the action's allowed_networks."


class Listener:
    """A TCP port that records every connection it accepts: any request would need one."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[tuple] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return  # closed
            self.accepted.append(peer)
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    target = Listener()
    yield target
    target.close()


@pytest.fixture
def listener6():
    target = Listener("::1")
    yield target
    target.close()



def hosts_file_name() -> str:
    """A name other than ``localhost`` that /etc/hosts maps to loopback (a public-looking
    name an attacker controls would do the same through DNS), else ``localhost``."""
    for line in Path("/etc/hosts").read_text().splitlines():
        fields = line.split("#")[0].split()
        if fields and fields[0].startswith("127."):
            for name in fields[1:]:
                if not name.startswith("localhost"):
                    return name
    return "localhost"


def attack(api, ref: str, parameters: dict) -> dict:
    response = api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": parameters})
    assert response.status_code == 201, response.get_json()
    return wait_until_done(api, response.get_json()["id"])


def spellings(port: int) -> list[tuple[str, str]]:
    name = hosts_file_name()
    return [
        (f"http://127.0.0.1:{port}/", "127.0.0.1 is a loopback address"),
        (f"http://localhost:{port}/", "localhost resolves to 127.0.0.1, a loopback address"),
        (f"http://0.0.0.0:{port}/", "0.0.0.0 is an unspecified address"),
        (f"http://2130706433:{port}/", "2130706433 resolves to 127.0.0.1, a loopback address"),
        (f"http://0x7f000001:{port}/", "0x7f000001 resolves to 127.0.0.1, a loopback address"),
        (f"http://0177.0.0.01:{port}/", "0177.0.0.01 resolves to 127.0.0.1, a loopback address"),
        (f"http://[::ffff:127.0.0.1]:{port}/", "::ffff:7f00:1 is an IPv4-mapped form of 127.0.0.1, a loopback address"),
        (f"http://{name}:{port}/", f"{name} resolves to 127.0.0.1, a loopback address"),
    ]


def test_core_http_cannot_reach_loopback_in_any_spelling(operator_api, core_pack, listener):
    for url, reason in spellings(listener.port):
        done = attack(operator_api, "core.http", {"url": url})

        assert done["status"] == "failed", (url, done["result"])
        assert done["error"] == reason + ALLOW_HINT
        assert done["result"] == {}
    assert listener.accepted == []


def test_core_http_cannot_reach_ipv6_loopback(operator_api, core_pack, listener6):
    done = attack(operator_api, "core.http", {"url": f"http://[::1]:{listener6.port}/", "method": "POST",
                                              "body": {"steal": True}})

    assert done["status"] == "failed"
    assert done["error"] == "::1 is a loopback address" + ALLOW_HINT
    assert listener6.accepted == []


@pytest.mark.parametrize(("url", "reason"), [
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/",
     "169.254.169.254 is a link-local address (where cloud metadata services answer)"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254 is a private address"),
    ("http://10.0.0.1:8200/v1/sys/health", "10.0.0.1 is a private address"),
    ("http://100.100.100.200/latest/meta-data/", "100.100.100.200 is a shared address (100.64.0.0/10)"),
])
def test_core_http_cannot_reach_metadata_or_internal_networks(operator_api, core_pack, url, reason):
    done = attack(operator_api, "core.http", {"url": url})

    assert done["status"] == "failed"
    assert done["error"] == reason + ALLOW_HINT


def test_a_caller_cannot_hand_core_http_an_allow_list(operator_api, core_pack, committed_db, listener):
    response = operator_api.post("/api/v1/actions/core.http/execute", json={"parameters": {
        "url": f"http://127.0.0.1:{listener.port}/", "allowed_networks": ["0.0.0.0/0", "::/0"]}})

    assert response.status_code == 422
    assert "allowed_networks" in response.get_json()["errors"]["parameters"]
    assert committed_db.scalar(select(func.count()).select_from(Execution)) == 0
    assert listener.accepted == []


def test_an_action_cannot_declare_a_mutable_allow_list(operator_api, core_pack):
    response = operator_api.post("/api/v1/actions", json={
        "pack": "core", "name": "open_http", "runner_type": "http-request",
        "parameters": {"url": {"type": "string"}, "allowed_networks": {"type": "array", "default": ["0.0.0.0/0"]}}})

    assert response.status_code == 422
    assert response.get_json()["errors"]["parameters"]["allowed_networks"] == [
        "'allowed_networks' must be declared 'immutable: true' with a 'default'."]


class Redirector:
    """An HTTP server that answers every request with a 307 to ``target`` (method and body kept)."""

    def __init__(self, target: str) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _redirect(self) -> None:
                recorder.requests.append(f"{self.command} {self.path}")
                self.send_response(307)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _redirect  # noqa: N815 - http.server's naming

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_redirect_from_an_allowed_server_to_loopback_is_refused(operator_api, make_action, http_server):
    # The pack's author allows one internal host by name; the attacker controls what it answers.
    ref = make_action("lab.fetch", "http-request", parameters={
        "url": {"type": "string"}, "method": {}, "body": {},
        "allowed_networks": {"default": ["localhost"], "immutable": True},
    })
    target = f"{http_server.url}/steal"
    redirector = Redirector(target)
    try:
        control = attack(operator_api, ref, {"url": f"http://localhost:{urlsplit(http_server.url).port}/things", "method": "POST",
                                             "body": {"name": "allowed"}})
        done = attack(operator_api, ref, {"url": f"http://localhost:{redirector.port}/start", "method": "POST",
                                          "body": {"name": "stolen"}})
    finally:
        redirector.close()

    assert control["status"] == "succeeded", control["error"]
    assert done["status"] == "failed"
    assert done["error"] == f"The redirect to {target} was refused: 127.0.0.1 is a loopback address" + ALLOW_HINT
    assert redirector.requests == ["POST /start"]
    assert http_server.requests == [("POST", "/things", {"name": "allowed"})]  # the control's, nothing more
