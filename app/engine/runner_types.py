"""The runner types and the parameters each runner itself understands.

An action's own ``parameters`` may redeclare a runner parameter to give it a default or
make it immutable (StackStorm's ``cmd: {default: "echo {{ message }}", immutable: true}``).
"""

from __future__ import annotations

from typing import Any

# A week, like an action's own `timeout`; it must also fit the executions.timeout column.
MAX_TIMEOUT = 7 * 24 * 3600

RUNNER_PARAMETERS: dict[str, dict[str, Any]] = {
    "noop": {},
    "local-shell-cmd": {
        "cmd": {"type": "string", "description": "command run by /bin/sh"},
        "cwd": {"type": "string", "description": "working directory"},
        "env": {"type": "object", "description": "extra environment variables"},
        "timeout": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT,
                    "description": "seconds before the process tree is killed"},
    },
    "local-shell-script": {
        "cwd": {"type": "string"},
        "env": {"type": "object"},
        "timeout": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT},
    },
    "python-script": {
        "env": {"type": "object"},
        "timeout": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT},
    },
    "http-request": {
        "url": {"type": "string", "description": "absolute http(s) URL"},
        "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
        "headers": {"type": "object"},
        "body": {"type": ["string", "object", "array", "null"]},
        "params": {"type": "object"},
        "username": {"type": "string"},
        "password": {"type": "string", "secret": True},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT},
        "verify_ssl_cert": {"type": "boolean"},
    },
    "workflow": {},
    "inquirer": {
        "schema": {"type": "object"},
        "route": {"type": "string"},
        "users": {"type": "array", "items": {"type": "string"}},
        "roles": {"type": "array", "items": {"type": "string"}},
        "ttl": {"type": "integer", "minimum": 1},
    },
}

RUNNER_TYPES = tuple(RUNNER_PARAMETERS)
# Runners whose action needs an entry point (a script or file in the pack).
NEEDS_ENTRY_POINT = {"local-shell-script", "python-script", "workflow"}


def effective_parameters(runner_type: str, action_parameters: dict[str, Any]) -> dict[str, Any]:
    """The runner's parameters overlaid with the action's (the action wins, key by key)."""
    merged: dict[str, Any] = {name: dict(d) for name, d in RUNNER_PARAMETERS.get(runner_type, {}).items()}
    for name, definition in (action_parameters or {}).items():
        merged[name] = {**merged.get(name, {}), **definition} if isinstance(definition, dict) else definition
    return merged
