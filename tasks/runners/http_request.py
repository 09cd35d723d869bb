"""http-request: one HTTP call with requests; 2xx/3xx succeed, anything else fails.

The request runs in a thread so the runner can keep polling for cancel and enforce the
whole-call timeout (requests' own timeout bounds each connect/read, not the total).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests

from tasks.runners.base import (
    CANCELED,
    FAILED,
    SUCCEEDED,
    TIMEOUT,
    RunContext,
    Runner,
    RunResult,
    register,
)
from tasks.runners.common import describe_stop, effective_timeout
from tasks.runners.process import POLL

BODY_CAP = 10 * 1024 * 1024  # bytes of response body kept
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def request_arguments(params: dict[str, Any], timeout: float) -> dict[str, Any]:
    """requests.request(**arguments) for the action's parameters; ValueError when they are bad."""
    url = params.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https") or not urlsplit(url).netloc:
        raise ValueError("The 'url' parameter must be an absolute http:// or https:// URL.")
    method = str(params.get("method") or "GET").upper()
    if method not in METHODS:
        raise ValueError(f"The method {method!r} is not one of {', '.join(sorted(METHODS))}.")
    for name in ("headers", "params"):
        if params.get(name) is not None and not isinstance(params[name], dict):
            raise ValueError(f"The '{name}' parameter must be an object.")
    arguments: dict[str, Any] = {
        "method": method, "url": url, "timeout": timeout, "stream": True,
        "headers": {str(k): str(v) for k, v in (params.get("headers") or {}).items()},
        "params": params.get("params") or None,
        "verify": params.get("verify_ssl_cert", True) is not False,
    }
    body = params.get("body")
    if isinstance(body, (dict, list)):
        arguments["json"] = body
    elif body is not None:
        arguments["data"] = str(body).encode("utf-8")
    if params.get("username") is not None:
        arguments["auth"] = (str(params["username"]), str(params.get("password") or ""))
    return arguments


def read_body(response: requests.Response) -> tuple[Any, bool]:
    """The body, parsed when it is JSON, and whether it was parsed."""
    data = bytearray()
    for chunk in response.iter_content(65536):
        data += chunk
        if len(data) > BODY_CAP:
            del data[BODY_CAP:]
            break
    text = data.decode(response.encoding or "utf-8", errors="replace")
    if "json" in response.headers.get("Content-Type", "").lower():
        try:
            return json.loads(text), True
        except ValueError:
            pass
    return text, False


def call(arguments: dict[str, Any], outcome: dict[str, Any]) -> None:
    try:
        with requests.request(**arguments) as response:
            body, parsed = read_body(response)
            outcome["result"] = {
                "status_code": response.status_code, "headers": dict(response.headers),
                "body": body, "parsed": parsed,
            }
    except requests.Timeout:
        outcome["timeout"] = True
    except requests.RequestException as exc:
        outcome["error"] = f"The request failed: {type(exc).__name__}: {exc}"


@register
class HttpRequestRunner(Runner):
    name = "http-request"

    def run(self, ctx: RunContext) -> RunResult:
        limit = effective_timeout(ctx)
        try:
            arguments = request_arguments(ctx.parameters, limit)
        except ValueError as exc:
            return RunResult(FAILED, {}, str(exc))
        outcome: dict[str, Any] = {}
        # A daemon thread: a canceled request is abandoned, bounded by requests' own timeout.
        worker = threading.Thread(target=call, args=(arguments, outcome), daemon=True)
        deadline = time.monotonic() + limit
        worker.start()
        while worker.is_alive():
            if ctx.is_canceled():
                return RunResult(CANCELED, {}, describe_stop(CANCELED, ctx))
            if time.monotonic() >= deadline:
                return RunResult(TIMEOUT, {}, describe_stop(TIMEOUT, ctx))
            worker.join(min(POLL, max(0.0, deadline - time.monotonic())))
        if outcome.get("timeout"):
            return RunResult(TIMEOUT, {}, describe_stop(TIMEOUT, ctx))
        if "error" in outcome:
            return RunResult(FAILED, {}, outcome["error"])
        result = outcome["result"]
        if 200 <= result["status_code"] < 400:
            return RunResult(SUCCEEDED, result)
        return RunResult(FAILED, result, f"The server answered {result['status_code']}.")
