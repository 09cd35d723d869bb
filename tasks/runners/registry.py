"""Runner type → runner: every runner module is imported here, so each has registered itself."""

from __future__ import annotations

from tasks.runners import (  # noqa: F401
    http_request,
    inquirer,
    local_shell_cmd,
    local_shell_script,
    noop,
    orquesta,
    python_script,
)
from tasks.runners.base import REGISTRY, Runner


def get_runner(runner_type: str) -> Runner:
    """A new runner of ``runner_type``; LookupError when no runner has that type."""
    try:
        return REGISTRY[runner_type]()
    except KeyError:
        raise LookupError(f"no runner for type {runner_type!r}") from None
