"""http-request against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.runners.base import CANCELED, FAILED, SUCCEEDED, TIMEOUT, get_runner

RUNNER = get_runner("http-request")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def _answer(self, status: int, body, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Seen-Header", self.headers.get("X-Custom", ""))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/json":
            self._answer(200, {"query": parse_qs(url.query)})
        elif url.path == "/text":
            self._answer(200, "plain words", "text/plain")
        elif url.path == "/secret":
            expected = "Basic " + base64.b64encode(b"ada:pa55").decode()
            if self.headers.get("Authorization") == expected:
                self._answer(200, {"user": "ada"})
            else:
                self._answer(401, {"error": "who are you"})
        elif url.path == "/slow":
            time.sleep(3)
            self._answer(200, {"late": True})
        else:
            self._answer(404, {"error": "no such thing"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self._answer(201, {"received": self.rfile.read(length).decode(),
                           "content_type": self.headers.get("Content-Type")})


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_get_parses_json_and_sends_params_and_headers(make_ctx, server):
    result = RUNNER.run(make_ctx("http-request", {"url": f"{server}/json", "params": {"q": "a b"},
                                                   "headers": {"X-Custom": "yes"}}))
    assert result.status == SUCCEEDED
    assert result.result["status_code"] == 200
    assert result.result["body"] == {"query": {"q": ["a b"]}} and result.result["parsed"] is True
    assert result.result["headers"]["X-Seen-Header"] == "yes"


def test_text_body_stays_text(make_ctx, server):
    result = RUNNER.run(make_ctx("http-request", {"url": f"{server}/text"}))
    assert result.result["body"] == "plain words" and result.result["parsed"] is False


def test_post_json_and_string_bodies(make_ctx, server):
    as_json = RUNNER.run(make_ctx("http-request", {"url": f"{server}/things", "method": "post", "body": {"n": 1}}))
    assert as_json.status == SUCCEEDED and as_json.result["status_code"] == 201
    assert json.loads(as_json.result["body"]["received"]) == {"n": 1}
    assert as_json.result["body"]["content_type"] == "application/json"
    as_text = RUNNER.run(make_ctx("http-request", {"url": f"{server}/things", "method": "POST", "body": "héllo",
                                                    "headers": {"Content-Type": "text/plain"}}))
    assert as_text.result["body"] == {"received": "héllo", "content_type": "text/plain"}


def test_basic_auth(make_ctx, server):
    ok = RUNNER.run(make_ctx("http-request", {"url": f"{server}/secret", "username": "ada", "password": "pa55"}))
    assert ok.status == SUCCEEDED and ok.result["body"] == {"user": "ada"}
    refused = RUNNER.run(make_ctx("http-request", {"url": f"{server}/secret", "username": "ada", "password": "no"}))
    assert refused.status == FAILED and refused.result["status_code"] == 401
    assert refused.error == "The server answered 401."


def test_4xx_fails_with_the_response(make_ctx, server):
    result = RUNNER.run(make_ctx("http-request", {"url": f"{server}/missing"}))
    assert result.status == FAILED
    assert result.result["status_code"] == 404 and result.result["body"] == {"error": "no such thing"}


def test_timeout(make_ctx, server):
    result = RUNNER.run(make_ctx("http-request", {"url": f"{server}/slow", "timeout": 0.5}))
    assert result.status == TIMEOUT
    assert result.error == "The action did not finish within 0.5 s."


def test_cancel_while_waiting(make_ctx, server):
    asked = []

    def canceled() -> bool:
        asked.append(True)
        return len(asked) > 2  # canceled after the request has started

    result = RUNNER.run(make_ctx("http-request", {"url": f"{server}/slow"}, canceled=canceled))
    assert result.status == CANCELED and len(asked) == 3


def test_non_http_urls_and_connection_errors_fail(make_ctx, tmp_path):
    for url in ("file:///etc/passwd", "ftp://example.com/x", "/relative", "http://"):
        result = RUNNER.run(make_ctx("http-request", {"url": url}))
        assert result.status == FAILED
        assert result.error == "The 'url' parameter must be an absolute http:// or https:// URL."
    bad_headers = RUNNER.run(make_ctx("http-request", {"url": "http://127.0.0.1:1/", "headers": "X-A: 1"}))
    assert bad_headers.error == "The 'headers' parameter must be an object."
    closed = RUNNER.run(make_ctx("http-request", {"url": "http://127.0.0.1:1/"}))
    assert closed.status == FAILED and closed.error.startswith("The request failed: ConnectionError")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """The same handler over HTTPS with a self-signed certificate (made by the openssl CLI)."""
    import ssl
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_certificates_are_verified_unless_turned_off(make_ctx, tls_server):
    refused = RUNNER.run(make_ctx("http-request", {"url": f"{tls_server}/json"}))
    assert refused.status == FAILED
    assert refused.error.startswith("The request failed: SSLError")

    trusting = RUNNER.run(make_ctx("http-request", {"url": f"{tls_server}/json", "verify_ssl_cert": False}))
    assert trusting.status == SUCCEEDED
    assert trusting.result["body"] == {"query": {}}
