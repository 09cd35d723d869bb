"""A secret echoed back in every form it can take, by an operator, against a real worker.

The secret holds ``$``, ``'``, ``"``, ``\\``, a newline, unicode and ``+/=``. A shell action
prints it as given, shell-quoted, JSON-escaped, URL-encoded and base64-encoded (whole, and
inside ``user:password`` as a Basic auth header carries it); an http-request action sends it
in credential headers to a server that echoes them back. Neither the execution (parameters,
result, error) nor its log may hold the secret in any of these forms, nor base64 that decodes
to it.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from app.services import vault
from tests.worker import wait_until_done

SECRET = "s3cr$t'x\"y\\z ünï€+/=\nline-two $HOME '\\''"
PIECES = [*SECRET.split("\n"), "s3cr$t", "line-two"]

# Prints the secret (read from stdin) in each form, one per line (as given: two lines).
FORMS_SCRIPT = r"""
import base64, json, shlex, sys
from urllib.parse import quote, quote_plus
s = sys.stdin.read()
b = s.encode()
print(s)
print(shlex.quote(s))
print("'" + s.replace("'", "'\\''") + "'")
print(json.dumps(s)[1:-1])
print(json.dumps(s, ensure_ascii=False)[1:-1])
print(json.dumps({"token": s}))
print(quote(s, safe=""), quote(s), quote_plus(s))
print(base64.b64encode(b).decode(), base64.b64encode(b).decode().rstrip("="))
print(base64.urlsafe_b64encode(b).decode(), base64.urlsafe_b64encode(b).decode().rstrip("="))
for user in ("a", "ab", "ada"):
    print("Authorization: Basic " + base64.b64encode((user + ":" + s).encode()).decode())
print(s, file=sys.stderr)
"""


def leaks(stored: str) -> list[str]:
    """Pieces of the secret in ``stored``, as text or as base64 that decodes to them."""
    found = [piece for piece in PIECES if piece in stored]
    for word in stored.replace('"', " ").replace(":", " ").split():
        for candidate in (word, word.replace("-", "+").replace("_", "/")):
            try:
                decoded = base64.b64decode(candidate.rstrip("=") + "=" * (-len(candidate.rstrip("=")) % 4))
            except ValueError:
                continue
            found += [f"base64 of {piece!r}" for piece in PIECES if piece.encode() in decoded]
    return found


def everything_stored(api, execution_id: int, committed_db) -> str:
    """What the API shows of the execution and its log, and the rows themselves."""
    shown = api.get(f"/api/v1/executions/{execution_id}")
    logs = api.get(f"/api/v1/executions/{execution_id}/logs")
    rows = committed_db.execute(text("SELECT t::text FROM executions t")).scalars().all()
    lines = committed_db.execute(text("SELECT t::text FROM execution_log_lines t")).scalars().all()
    # The answers as sent and decoded (JSON escapes unicode), and the rows as PostgreSQL holds them.
    answers = [shown.get_data(as_text=True), logs.get_data(as_text=True),
               json.dumps(shown.get_json(), ensure_ascii=False), json.dumps(logs.get_json(), ensure_ascii=False)]
    return "\n".join([*answers, *(item["line"] for item in logs.get_json()), *rows, *lines])


def test_a_secret_echoed_in_every_form_is_masked(operator_api, make_action, committed_db):
    ref = make_action("lab.forms", "local-shell-cmd", parameters={
        "token": {"type": "string", "secret": True, "required": True},
        "cmd": {"default": "printf '%s' {{ token }} | /usr/bin/python3 -I -c \"$FORMS\"", "immutable": True},
        "env": {"default": {"FORMS": FORMS_SCRIPT}, "immutable": True},
    })

    response = operator_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"token": SECRET}})
    assert response.status_code == 201, response.get_json()
    done = wait_until_done(operator_api, response.get_json()["id"])

    assert done["status"] == "succeeded", done["error"]
    assert done["parameters"]["token"] == "********"
    stdout = done["result"]["stdout"].splitlines()
    # The result is masked whole, so a quoted multi-line form may become one mask.
    assert stdout[0] == "********" and len(stdout) >= 11
    assert stdout[-1] == "Authorization: Basic ********"  # "ada:" fills whole base64 groups
    logs = [item["line"] for item in operator_api.get(f"/api/v1/executions/{done['id']}/logs").get_json()]
    assert len(logs) == 17 and logs.count("********") >= 4
    committed_db.rollback()
    assert leaks(everything_stored(operator_api, done["id"], committed_db)) == []


class HeaderEcho:
    """An HTTP server that answers with the request's headers as JSON."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                answer = json.dumps({"headers": dict(self.headers), "path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def header_echo():
    server = HeaderEcho()
    yield server
    server.close()


def test_credential_headers_are_stored_in_vault_and_never_shown(app, operator_api, make_action, committed_db,
                                                                header_echo, celery_worker):
    token = "tok-$'x\"y\\z+/=tail"  # a header value is one line of latin-1
    ref = make_action("lab.echo", "http-request", parameters={
        "url": {"type": "string"}, "headers": {}, "username": {}, "password": {},
        "allowed_networks": {"default": ["127.0.0.1"], "immutable": True},
    })

    response = operator_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {
        "url": f"{header_echo.url}/echo", "username": "ada", "password": token,
        "headers": {"X-API-Key": token, "Cookie": f"session={token}", "Accept": "application/json"}}})
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["parameters"]["headers"] == {"X-API-Key": "********", "Cookie": "********",
                                                "Accept": "application/json"}
    done = wait_until_done(operator_api, created["id"])

    assert done["status"] == "succeeded", done["error"]
    echoed = {name.lower(): value for name, value in done["result"]["body"]["headers"].items()}
    assert echoed["x-api-key"] == "********" and echoed["authorization"] == "Basic ********"
    assert echoed["cookie"] == "********" and echoed["accept"] == "application/json"
    assert done["parameters"]["headers"]["X-API-Key"] == "********"
    committed_db.rollback()
    stored = everything_stored(operator_api, done["id"], committed_db)
    assert token not in stored and leaks(stored) == []
    with app.app_context():
        assert vault.read_secret(vault.execution_secret_path(done["id"])) is None  # forgotten at the end
    assert token not in celery_worker.log()
