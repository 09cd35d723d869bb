"""Request ids: returned on every response, accepted from the caller, logged as JSON."""

from __future__ import annotations

import json
import logging

from app.logging import ContextFilter, configure_logging


def test_response_carries_a_generated_request_id(anonymous):
    response = anonymous.get("/health")
    assert len(response.headers["X-Request-ID"]) == 32


def test_callers_request_id_is_returned(anonymous):
    response = anonymous.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_hostile_request_id_is_replaced(anonymous):
    response = anonymous.get("/health", headers={"X-Request-ID": "x\" injected\\n" + "a" * 100})
    assert response.headers["X-Request-ID"] != "x\" injected\\n" + "a" * 100
    assert len(response.headers["X-Request-ID"]) == 32


def test_logs_are_json_with_the_request_id(anonymous, capsys):
    configure_logging("INFO", "json")
    try:
        anonymous.get("/health", headers={"X-Request-ID": "trace-me-1"})
    finally:
        configure_logging("WARNING", "text")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "patchbay.access"]
    assert access and access[-1]["request_id"] == "trace-me-1"
    assert access[-1]["status"] == 200 and access[-1]["path"] == "/health"


def test_context_filter_adds_request_id_field():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert ContextFilter().filter(record) and hasattr(record, "request_id")
