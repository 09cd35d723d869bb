"""Assertions shared by the content API tests."""

from __future__ import annotations

import json
from typing import Any

from tests.factories import pagination

DEEP = "[" * 100_000 + "]" * 100_000


def assert_error(response, status: int, field: str | None = None) -> dict:
    """The one error shape, with ``field`` named in ``errors`` when given."""
    body = response.get_json()
    assert response.status_code == status, (response.status_code, body)
    assert set(body) == {"code", "status", "message", "errors"}, body
    assert body["code"] == status
    assert "Traceback" not in response.get_data(as_text=True)
    if field is not None:
        assert field in body["errors"], body
    return body


def hostile_bodies(valid: dict[str, Any], text_field: str = "description") -> list[tuple[str, Any, int]]:
    """(label, body, expected status) for bodies no endpoint may answer with a 5xx.

    ``body`` is raw text when it is a str (sent as-is with a JSON content type), else JSON.
    """
    return [
        ("array body", "[]", 422),
        ("string body", '"x"', 422),
        ("number body", "42", 422),
        ("null body", "null", 422),
        ("invalid JSON", '{"name": ', 400),
        ("deeply nested JSON", DEEP, 400),
        ("not UTF-8", b"\xff\xfe{}", 400),
        ("NUL in text", {**valid, text_field: "a\u0000b"}, 422),
        ("lone surrogate", {**valid, text_field: "\ud800"}, 422),
        ("huge string", {**valid, text_field: "x" * 200_000}, 422),
        ("unknown field", {**valid, "surprise": 1}, 422),
    ]


def send_raw(client, method: str, url: str, body: Any):
    if isinstance(body, (str, bytes)):
        return client.request(method, url, data=body, headers={"Content-Type": "application/json"})
    return client.request(method, url, json=body)


def assert_hostile_rejected(client, method: str, url: str, valid: dict[str, Any], count, text_field: str = "description") -> None:
    """Every hostile body gets its 4xx in the error shape, and the row count does not move."""
    before = count()
    for label, body, status in hostile_bodies(valid, text_field):
        response = send_raw(client, method, url, body)
        assert response.status_code == status, (label, response.status_code, response.get_data(as_text=True)[:300])
        assert_error(response, status)
        assert count() == before, label


def assert_too_large(client, method: str, url: str, limit: int, count) -> None:
    before = count()
    body = json.dumps({"description": "x" * limit})
    response = client.request(method, url, data=body, headers={"Content-Type": "application/json"})
    body = assert_error(response, 413)
    assert str(limit) in body["message"]
    assert count() == before


def refs(response) -> list[str]:
    return [item.get("ref", item.get("name")) for item in response.get_json()]


def total(response) -> int:
    return pagination(response)["total"]
