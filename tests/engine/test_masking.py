"""Masking secrets in stored text (app/services/masking.py) and credential headers
(app/engine/parameters.py): every form a secret takes, and what is left alone."""

from __future__ import annotations

import base64
import json
import shlex
from urllib.parse import quote, quote_plus

import pytest

from app.engine.parameters import (
    MASK,
    SECRET_HEADERS,
    credential_header,
    mask_secrets,
    restore_secrets,
    schema_errors,
    vault_secrets,
)
from app.services.masking import (
    MIN_MASKED_LENGTH,
    add_secret_strings,
    mask_text,
    mask_value,
    secret_strings,
)

# Every character that quoting or encoding changes: $ ' " \ a newline, unicode, + / =.
SECRET = "pa$$'wo\"rd\\ünï€+/=\nsecond line £+/="
FIRST, SECOND = SECRET.split("\n")
HIDDEN = secret_strings({"token": SECRET})


def b64(text: str, *, urlsafe: bool = False, pad: bool = True) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    encoded = encode(text.encode()).decode()
    return encoded if pad else encoded.rstrip("=")


FORMS = {
    "as given": SECRET,
    "shlex.quote": shlex.quote(SECRET),
    "the '\\'' idiom": "'" + SECRET.replace("'", "'\\''") + "'",
    "JSON": json.dumps(SECRET)[1:-1],
    "JSON, unicode kept": json.dumps(SECRET, ensure_ascii=False)[1:-1],
    "JSON document": json.dumps({"token": SECRET}),
    "Python repr": repr(SECRET),
    "quote": quote(SECRET, safe=""),
    "quote, / kept": quote(SECRET),
    "quote_plus": quote_plus(SECRET),
    "base64": b64(SECRET),
    "base64 unpadded": b64(SECRET, pad=False),
    "urlsafe base64": b64(SECRET, urlsafe=True),
    "urlsafe base64 unpadded": b64(SECRET, urlsafe=True, pad=False),
    "Basic auth, 1-byte user": "Authorization: Basic " + b64("a:" + SECRET),
    "Basic auth, 2-byte user": "Authorization: Basic " + b64("ab:" + SECRET),
    "Basic auth, 3-byte user": "Authorization: Basic " + b64("abc:" + SECRET),
    "base64 of a JSON body": "payload=" + b64(json.dumps({"user": "ada", "password": SECRET})),
}


def masked_output(text: str) -> list[str]:
    """As output is stored: line by line."""
    return [mask_text(line, HIDDEN) for line in f"before {text} after".split("\n")]


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_every_form_of_the_secret_is_masked(form):
    lines = masked_output(form)

    stored = "\n".join(lines)
    assert MASK in stored
    assert stored.startswith("before ") and stored.endswith(" after")
    for leak in (FIRST, SECOND, "pa$$", "second line", "wo\"rd", "ünï€"):
        assert leak not in stored
    for line in lines:
        for encoded in (line, line.replace("-", "+").replace("_", "/")):
            for word in encoded.replace(":", " ").split():
                try:
                    decoded = base64.b64decode(word + "=" * (-len(word) % 4)).decode("utf-8", "replace")
                except ValueError:
                    continue
                assert FIRST not in decoded and SECOND not in decoded


def test_a_quoted_multi_line_secret_is_masked_on_each_line():
    assert masked_output(shlex.quote(SECRET)) == ["before ********", "******** after"]


def test_the_same_in_results_and_numbers():
    value = {"stdout": f"x={SECRET}\n", "nested": [{"k": quote_plus(SECRET)}], "count": 4711, "ok": True}
    masked = mask_value(value, secret_strings({"token": SECRET, "pin": 4711}))
    assert masked == {"stdout": "x=********\n", "nested": [{"k": MASK}], "count": MASK, "ok": True}


def test_short_secrets_are_masked_as_parameters_only():
    assert MIN_MASKED_LENGTH == 4
    assert secret_strings({"pin": "123"}) == []
    assert mask_text("code 123", secret_strings({"pin": "123"})) == "code 123"
    assert mask_text("code 1234", secret_strings({"pin": "1234"})) == f"code {MASK}"


def test_ordinary_text_and_base64_without_the_secret_are_left_alone():
    text = f"status ok; token {b64('nothing secret here')} at /usr/local/bin/python3 and words"
    assert mask_text(text, HIDDEN) == text


def test_credentials_of_an_authorization_value_are_secret_on_their_own():
    hidden = secret_strings({"headers:credentials": {"Authorization": "Bearer abc.def-123"}})
    assert mask_text("rejected token abc.def-123", hidden) == f"rejected token {MASK}"

    basic = secret_strings({"h": {"Authorization": "Basic " + b64("ada:s3cr3t-pw")}})
    assert mask_text("user ada, password s3cr3t-pw", basic) == f"user ada, password {MASK}"


def test_more_secrets_join_a_list_in_use():
    hidden = secret_strings({"a": "first-secret"})
    same = hidden
    add_secret_strings(hidden, {"Authorization": "Bearer later-token"})
    assert same is hidden and "later-token" in hidden
    assert hidden == sorted(hidden, key=len, reverse=True)


HTTP_SCHEMA = {"headers": {"type": "object"}, "password": {"type": "string", "secret": True}}


@pytest.mark.parametrize("name", ["Authorization", "proxy-authorization", "Cookie", "X-API-Key", "X-Auth-Token",
                                  "Private-Token", "X-Vault-Token", "X-Hub-Signature", "X-Session-Id", "apikey"])
def test_credential_header_names(name):
    assert credential_header(name)


@pytest.mark.parametrize("name", ["Accept", "Content-Type", "User-Agent", "X-Request-Id", "If-None-Match"])
def test_ordinary_header_names(name):
    assert not credential_header(name)


def test_credential_headers_go_to_vault_and_come_back():
    values = {"headers": {"Authorization": "Bearer t", "Accept": "text/plain"}, "password": "pw", "url": "u"}

    shown = mask_secrets(values, HTTP_SCHEMA)
    stored = vault_secrets(values, HTTP_SCHEMA)

    assert shown == {"headers": {"Authorization": MASK, "Accept": "text/plain"}, "password": MASK, "url": "u"}
    assert stored == {"password": "pw", SECRET_HEADERS: {"Authorization": "Bearer t"}}
    assert restore_secrets(shown, stored) == values


def test_secret_headers_as_a_whole_stay_one_secret():
    schema = {"headers": {"type": "object", "secret": True}}
    values = {"headers": {"Authorization": "Bearer t"}}
    assert mask_secrets(values, schema) == {"headers": MASK}
    assert vault_secrets(values, schema) == values
    assert restore_secrets({"headers": MASK}, values) == values


def test_allowed_networks_must_be_immutable():
    assert schema_errors({"allowed_networks": {"type": "array", "default": ["10.0.0.0/8"], "immutable": True}}) == {}
    assert schema_errors({"allowed_networks": {"type": "array", "default": ["10.0.0.0/8"]}}) == {
        "allowed_networks": ["'allowed_networks' must be declared 'immutable: true' with a 'default'."]}
