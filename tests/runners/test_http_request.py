"""http-request against a real HTTP server on 127.0.0.1, which the actions here allow
(``allowed_networks``); the guard against internal destinations is tested at the end."""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tasks.runners import http_request
from tasks.runners.base import CANCELED, FAILED, SUCCEEDED, TIMEOUT
from tasks.runners.http_request import MAX_REDIRECTS, Destinations, address_kind
from tasks.runners.registry import get_runner

RUNNER = get_runner("http-request")
# What an action declares to reach the test servers on loopback.
ALLOW_LOCAL = {"allowed_networks": {"type": "array", "default": ["127.0.0.1"], "immutable": True}}


class Handler(BaseHTTPRequestHandler):
    seen: list[str] = []  # every request's path, to prove a refused one never arrived

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
        Handler.seen.append(self.path)
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
        elif url.path == "/redirect":
            self.send_response(int(parse_qs(url.query).get("status", ["302"])[0]))
            self.send_header("Location", parse_qs(url.query).get("to", ["/redirect"])[0])  # loops without one
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif url.path == "/headers":
            self._answer(200, dict(self.headers))
        elif url.path == "/slow":
            time.sleep(3)
            self._answer(200, {"late": True})
        else:
            self._answer(404, {"error": "no such thing"})

    def do_POST(self):
        Handler.seen.append(self.path)
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


@pytest.fixture
def local_ctx(make_ctx):
    """local_ctx(parameters, ...): a RunContext of an action that allows 127.0.0.1."""
    def make(parameters, **kwargs):
        return make_ctx("http-request", parameters, schema=ALLOW_LOCAL, **kwargs)

    return make


def test_get_parses_json_and_sends_params_and_headers(local_ctx, server):
    result = RUNNER.run(local_ctx({"url": f"{server}/json", "params": {"q": "a b"},
                                                   "headers": {"X-Custom": "yes"}}))
    assert result.status == SUCCEEDED
    assert result.result["status_code"] == 200
    assert result.result["body"] == {"query": {"q": ["a b"]}} and result.result["parsed"] is True
    assert result.result["headers"]["X-Seen-Header"] == "yes"


def test_text_body_stays_text(local_ctx, server):
    result = RUNNER.run(local_ctx({"url": f"{server}/text"}))
    assert result.result["body"] == "plain words" and result.result["parsed"] is False


def test_post_json_and_string_bodies(local_ctx, server):
    as_json = RUNNER.run(local_ctx({"url": f"{server}/things", "method": "post", "body": {"n": 1}}))
    assert as_json.status == SUCCEEDED and as_json.result["status_code"] == 201
    assert json.loads(as_json.result["body"]["received"]) == {"n": 1}
    assert as_json.result["body"]["content_type"] == "application/json"
    as_text = RUNNER.run(local_ctx({"url": f"{server}/things", "method": "POST", "body": "héllo",
                                                    "headers": {"Content-Type": "text/plain"}}))
    assert as_text.result["body"] == {"received": "héllo", "content_type": "text/plain"}


def test_basic_auth(local_ctx, server):
    ok = RUNNER.run(local_ctx({"url": f"{server}/secret", "username": "ada", "password": "pa55"}))
    assert ok.status == SUCCEEDED and ok.result["body"] == {"user": "ada"}
    refused = RUNNER.run(local_ctx({"url": f"{server}/secret", "username": "ada", "password": "no"}))
    assert refused.status == FAILED and refused.result["status_code"] == 401
    assert refused.error == "The server answered 401."


def test_4xx_fails_with_the_response(local_ctx, server):
    result = RUNNER.run(local_ctx({"url": f"{server}/missing"}))
    assert result.status == FAILED
    assert result.result["status_code"] == 404 and result.result["body"] == {"error": "no such thing"}


def test_timeout(local_ctx, server):
    result = RUNNER.run(local_ctx({"url": f"{server}/slow", "timeout": 0.5}))
    assert result.status == TIMEOUT
    assert result.error == "The action did not finish within 0.5 s."


def test_cancel_while_waiting(local_ctx, server):
    asked = []

    def canceled() -> bool:
        asked.append(True)
        return len(asked) > 2  # canceled after the request has started

    result = RUNNER.run(local_ctx({"url": f"{server}/slow"}, canceled=canceled))
    assert result.status == CANCELED and len(asked) == 3


def test_non_http_urls_and_connection_errors_fail(local_ctx, tmp_path):
    for url in ("file:///etc/passwd", "ftp://example.com/x", "/relative", "http://"):
        result = RUNNER.run(local_ctx({"url": url}))
        assert result.status == FAILED
        assert result.error == "The 'url' parameter must be an absolute http:// or https:// URL."
    bad_headers = RUNNER.run(local_ctx({"url": "http://127.0.0.1:1/", "headers": "X-A: 1"}))
    assert bad_headers.error == "The 'headers' parameter must be an object."
    closed = RUNNER.run(local_ctx({"url": "http://127.0.0.1:1/"}))
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
def test_tls_certificates_are_verified_unless_turned_off(local_ctx, tls_server):
    refused = RUNNER.run(local_ctx({"url": f"{tls_server}/json"}))
    assert refused.status == FAILED
    assert refused.error.startswith("The request failed: SSLError")

    trusting = RUNNER.run(local_ctx({"url": f"{tls_server}/json", "verify_ssl_cert": False}))
    assert trusting.status == SUCCEEDED
    assert trusting.result["body"] == {"query": {}}


# --- internal destinations -------------------------------------------------------------------

REFUSED = "; allow it with HTTP_ALLOWED_NETWORKS or the action's allowed_networks."


@pytest.mark.parametrize(("spelling", "reason"), [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("localhost", "localhost resolves to 127.0.0.1, a loopback address"),
    ("[::1]", "::1 is a loopback address"),
    ("0.0.0.0", "0.0.0.0 is an unspecified address"),
    ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ("0x7f000001", "0x7f000001 resolves to 127.0.0.1, a loopback address"),
    ("0177.0.0.1", "0177.0.0.1 resolves to 127.0.0.1, a loopback address"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1 is an IPv4-mapped form of 127.0.0.1, a loopback address"),
])
def test_loopback_in_any_spelling_is_refused_before_anything_is_sent(make_ctx, server, spelling, reason):
    port = urlsplit(server).port
    before = list(Handler.seen)

    result = RUNNER.run(make_ctx("http-request", {"url": f"http://{spelling}:{port}/json"}))

    assert result.status == FAILED and result.result == {}
    assert result.error == reason + REFUSED
    assert Handler.seen == before


@pytest.mark.parametrize(("url", "reason"), [
    ("http://169.254.169.254/latest/meta-data/",
     "169.254.169.254 is a link-local address (where cloud metadata services answer)"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address (where cloud metadata services answer)"),
    ("http://10.0.0.8/", "10.0.0.8 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("https://172.16.0.1/", "172.16.0.1 is a private address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared address (100.64.0.0/10)"),
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://[ff02::1]/", "ff02::1 is a multicast address"),
    ("http://[fd00::1]/", "fd00::1 is a private address"),
    ("http://240.0.0.1/", "240.0.0.1 is a private address"),
    ("http://[::]/", ":: is an unspecified address"),
    ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe is a NAT64 form of 169.254.169.254, "
                                     "a link-local address (where cloud metadata services answer)"),
    ("http://[2002:7f00:1::]/", "2002:7f00:1:: is a 6to4 form of 127.0.0.1, a loopback address"),
])
def test_internal_networks_are_refused(make_ctx, url, reason):
    result = RUNNER.run(make_ctx("http-request", {"url": url, "timeout": 2}))

    assert result.status == FAILED
    assert result.error == reason + REFUSED


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"])
def test_public_addresses_are_not_internal(address):
    assert address_kind(ipaddress.ip_address(address)) is None


def test_a_callers_value_or_a_mutable_declaration_allows_nothing(make_ctx, server):
    given = RUNNER.run(make_ctx("http-request", {"url": f"{server}/json", "allowed_networks": ["127.0.0.1"]}))
    assert given.status == FAILED and given.error.startswith("127.0.0.1 is a loopback address")

    mutable = {"allowed_networks": {"type": "array", "default": ["127.0.0.1"]}}
    declared = RUNNER.run(make_ctx("http-request", {"url": f"{server}/json"}, schema=mutable))
    assert declared.status == FAILED and declared.error.startswith("127.0.0.1 is a loopback address")


def test_the_operator_setting_allows_networks(app, make_ctx, server, monkeypatch):
    monkeypatch.setitem(app.config, "HTTP_ALLOWED_NETWORKS", ("10.0.0.0/8", "127.0.0.0/8"))
    with app.app_context():
        result = RUNNER.run(make_ctx("http-request", {"url": f"{server}/json"}))
    assert result.status == SUCCEEDED, result.error


def test_a_host_name_allows_that_name_only(make_ctx, server):
    port = urlsplit(server).port
    by_name = {"allowed_networks": {"type": "array", "default": ["LocalHost."], "immutable": True}}

    named = RUNNER.run(make_ctx("http-request", {"url": f"http://localhost:{port}/json"}, schema=by_name))
    literal = RUNNER.run(make_ctx("http-request", {"url": f"http://127.0.0.1:{port}/json"}, schema=by_name))

    assert named.status == SUCCEEDED, named.error
    assert literal.status == FAILED and literal.error == "127.0.0.1 is a loopback address" + REFUSED


def test_every_redirect_hop_is_checked(make_ctx, server):
    port = urlsplit(server).port
    by_name = {"allowed_networks": {"type": "array", "default": ["localhost"], "immutable": True}}
    target = f"http://127.0.0.1:{port}/json"
    before = list(Handler.seen)

    result = RUNNER.run(make_ctx("http-request", {"url": f"http://localhost:{port}/redirect",
                                                  "params": {"to": target, "status": "307"}}, schema=by_name))

    assert result.status == FAILED
    assert result.error == f"The redirect to {target} was refused: 127.0.0.1 is a loopback address" + REFUSED
    assert Handler.seen[len(before):] == [f"/redirect?to={quote(target, safe='')}&status=307"]


def test_redirects_are_capped(local_ctx, server):
    before = len(Handler.seen)

    result = RUNNER.run(local_ctx({"url": f"{server}/redirect"}))

    assert result.status == FAILED
    assert result.error == f"The request failed: TooManyRedirects: Exceeded {MAX_REDIRECTS} redirects."
    assert len(Handler.seen) - before == MAX_REDIRECTS + 1


def test_credential_headers_do_not_follow_a_redirect_to_another_host(make_ctx, server):
    port = urlsplit(server).port
    both = {"allowed_networks": {"type": "array", "default": ["localhost", "127.0.0.1"], "immutable": True}}
    headers = {"Authorization": "Bearer t0ken", "X-API-Key": "k3y", "X-Custom": "kept"}

    result = RUNNER.run(make_ctx("http-request", {
        "url": f"http://localhost:{port}/redirect", "params": {"to": f"http://127.0.0.1:{port}/headers"},
        "headers": headers}, schema=both))

    assert result.status == SUCCEEDED, result.error
    seen = {name.lower(): value for name, value in result.result["body"].items()}
    assert seen["x-custom"] == "kept"
    assert "authorization" not in seen and "x-api-key" not in seen


def test_proxies_from_the_environment_are_not_used(local_ctx, server, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")  # a proxy that cannot answer
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    result = RUNNER.run(local_ctx({"url": f"{server}/json"}))

    assert result.status == SUCCEEDED, result.error


def _fake_dns(monkeypatch, answers: list[list[str]]) -> tuple[list[str], list[tuple]]:
    """Answers for ``rebind.test`` (one list per lookup) and where connects were tried."""
    real = socket.getaddrinfo
    lookups: list[str] = []
    connects: list[tuple] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        addresses = answers[min(len(lookups), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    def create_connection(address, *args, **kwargs):
        connects.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(http_request.connection, "create_connection", create_connection)
    return lookups, connects


def test_the_checked_address_is_the_one_connected(make_ctx, monkeypatch):
    # A rebinding DNS server answers a public address first, loopback afterwards.
    lookups, connects = _fake_dns(monkeypatch, [["93.184.216.34"], ["127.0.0.1"]])

    result = RUNNER.run(make_ctx("http-request", {"url": "http://rebind.test:8080/", "timeout": 2}))

    assert result.status == FAILED and result.error.startswith("The request failed: ConnectionError")
    assert lookups == ["rebind.test"]
    assert connects == [("93.184.216.34", 8080)]


def test_one_internal_answer_among_public_ones_refuses_the_host(make_ctx, monkeypatch):
    _, connects = _fake_dns(monkeypatch, [["93.184.216.34", "127.0.0.1"]])

    result = RUNNER.run(make_ctx("http-request", {"url": "http://rebind.test/"}))

    assert result.error == "rebind.test resolves to 127.0.0.1, a loopback address" + REFUSED
    assert connects == []


def test_allow_list_words():
    destinations = Destinations.parse(["10.1.0.0/16", "[fd00::1]", " Intranet.Example. ", "", "192.168.1.7"])

    assert destinations.names == frozenset({"intranet.example"})
    assert destinations.allows("x", ipaddress.ip_address("10.1.200.3"))
    assert destinations.allows("x", ipaddress.ip_address("::ffff:10.1.0.1"))  # the mapped form of an allowed one
    assert destinations.allows("intranet.example", ipaddress.ip_address("10.9.9.9"))
    assert not destinations.allows("x", ipaddress.ip_address("10.2.0.1"))
    assert destinations.refusal("x", ipaddress.ip_address("fd00::1")) is None
    assert destinations.refusal("x", ipaddress.ip_address("192.168.1.8")) == "x resolves to 192.168.1.8, a private address" + REFUSED
