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
        # Read only from the action's own declaration (a default, immutable: true), never
        # from a value: it widens where the request may go.
        "allowed_networks": {"type": "array", "items": {"type": "string"},
                             "description": "hosts or CIDRs this action may reach although they are "
                                            "loopback, private or link-local"},
    },
    # StackStorm's Orquesta workflows (app/engine/workflows); `workflow` is the same runner.
    "orquesta": {},
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
NEEDS_ENTRY_POINT = {"local-shell-script", "python-script", "orquesta", "workflow"}
WORKFLOW_RUNNERS = ("orquesta", "workflow")


def effective_parameters(runner_type: str, action_parameters: dict[str, Any]) -> dict[str, Any]:
    """The runner's parameters overlaid with the action's (the action wins, key by key)."""
    merged: dict[str, Any] = {name: dict(d) for name, d in RUNNER_PARAMETERS.get(runner_type, {}).items()}
    for name, definition in (action_parameters or {}).items():
        merged[name] = {**merged.get(name, {}), **definition} if isinstance(definition, dict) else definition
    return merged


# Environment names that change how a shell or an interpreter starts (a file it sources, a
# library it preloads, code it runs at startup): only pack metadata may set them, never a
# caller, a rule or a rendered template.
STARTUP_ENV_NAMES = frozenset({
    "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "IFS", "CDPATH",
    "GLOBIGNORE", "HOSTALIASES", "NODE_OPTIONS", "NODE_PATH", "RUBYOPT", "RUBYLIB", "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "GCONV_PATH", "LOCPATH", "NLSPATH", "MALLOC_CHECK_",
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "GIT_CONFIG_GLOBAL", "SSH_ASKPASS", "EDITOR", "VISUAL",
    "PAGER", "LESSOPEN", "ZDOTDIR", "PATH", "HOME", "TMPDIR", "PATCHBAY_RUN_TOKEN",
})
STARTUP_ENV_PREFIXES = ("BASH_FUNC_", "LD_", "PYTHON", "PERL5", "PERLLIB", "PERL_", "GLIBC_", "DYLD_",
                        "PATCHBAY_", "ST2_")


def startup_env_name(name: str) -> bool:
    """Whether ``name`` may change how a program starts (or is Patchbay's own): refused in
    ``env`` from any source but the action's metadata."""
    upper = name.upper()
    return upper in STARTUP_ENV_NAMES or upper.startswith(STARTUP_ENV_PREFIXES) or "=" in name
