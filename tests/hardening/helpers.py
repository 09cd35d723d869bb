"""The one error shape, asserted the same way in every hardening test."""

from __future__ import annotations


def assert_error(response, status: int) -> dict:
    body = response.get_json()
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert set(body) == {"code", "status", "message", "errors"}, body
    assert body["code"] == status
    assert "Traceback" not in response.get_data(as_text=True)
    return body
