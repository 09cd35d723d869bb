"""What the runners share: the child's environment and working directory, the timeout,
the parameters meant for the action, and turning a process outcome into a RunResult."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.engine.runner_types import RUNNER_PARAMETERS, startup_env_name
from tasks.runners.base import FAILED, SUCCEEDED, TIMEOUT, RunContext, RunResult
from tasks.runners.isolation import IsolationError

if TYPE_CHECKING:
    from tasks.runners.process import ProcessOutcome

# Only these worker variables reach an action: the worker's own (DATABASE_URL, VAULT_TOKEN,
# SECRET_KEY, ...) are credentials an action must not inherit.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "TMPDIR")


def env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def child_environment(ctx: RunContext, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """A small environment: a few worker variables, the execution's identity, ``extra``."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update({
        "PATCHBAY_EXECUTION_ID": str(ctx.execution_id),
        "PATCHBAY_ACTION_REF": ctx.action_ref,
        "PATCHBAY_PACK": ctx.pack,
        # The names StackStorm actions read.
        "ST2_ACTION_EXECUTION_ID": str(ctx.execution_id),
        "ST2_ACTION_PACK_NAME": ctx.pack,
    })
    for name, value in (extra or {}).items():
        env[str(name)] = env_value(value)
    return env


def effective_timeout(ctx: RunContext) -> float:
    """ctx.timeout, or the action's own ``timeout`` parameter when that is shorter."""
    own = ctx.parameters.get("timeout")
    if isinstance(own, (int, float)) and not isinstance(own, bool) and 0 < own < ctx.timeout:
        return float(own)
    return float(ctx.timeout)


def working_directory(ctx: RunContext, default: str | None = None) -> str | None:
    """The ``cwd`` parameter, else ``default``, else the pack directory, else None (the
    action's private scratch directory)."""
    cwd = ctx.parameters.get("cwd")
    if isinstance(cwd, str) and cwd:
        return cwd
    for candidate in (default, ctx.pack_path):
        if candidate and os.path.isdir(candidate):
            return candidate
    return None


def start_error(exc: Exception) -> RunResult:
    """A process that could not start (bad cwd, missing program, bad env name) failed."""
    if isinstance(exc, (ActionInputError, IsolationError)):
        return RunResult(FAILED, {}, str(exc))
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return RunResult(FAILED, {}, f"The process could not start ({exc.strerror}{where}).")
    return RunResult(FAILED, {}, f"The process could not start ({exc}).")


class ActionInputError(ValueError):
    """A runner parameter the runner refuses; the message is the execution's error."""


def extra_env(ctx: RunContext) -> dict[str, Any]:
    """The ``env`` parameter, checked: a name that changes how a shell or an interpreter
    starts (BASH_ENV, LD_PRELOAD, PYTHON*, ...) is taken only as the action's own metadata
    sets it, whatever a caller, a rule or a template made of it. Raises ActionInputError."""
    env = ctx.parameters.get("env") or {}
    if not isinstance(env, dict):
        raise ActionInputError("The 'env' parameter must be an object of strings.")
    definition = ctx.parameter_schema.get("env")
    declared = definition.get("default") if isinstance(definition, dict) else None
    declared = declared if isinstance(declared, dict) else {}
    for name, value in env.items():
        if not name or "=" in name or "\x00" in name:
            raise ActionInputError(f"The environment name {name!r} is not valid.")
        if startup_env_name(name) and (name not in declared or declared[name] != value):
            raise ActionInputError(f"The environment variable {name!r} changes how programs start; "
                                   "only the action's own metadata may set it.")
        if "\x00" in env_value(value):
            raise ActionInputError(f"The environment variable {name!r} holds a NUL byte.")
    return env


def strip_shell_chars(text: str) -> str:
    """StackStorm's ``strip_shell_chars``: the output without its one last line ending, so
    ``result().stdout`` of ``echo hi`` is ``hi`` (the log keeps every line as it came)."""
    if text.endswith("\n"):
        text = text[:-1]
    return text[:-1] if text.endswith("\r") else text


def shell_result(outcome: ProcessOutcome, ctx: RunContext) -> RunResult:
    """The result StackStorm's shell runners give: output (its last line ending stripped, as
    StackStorm does), return code, succeeded/failed."""
    ok = outcome.status is None and outcome.return_code == 0
    result: dict[str, Any] = {
        "stdout": strip_shell_chars(outcome.stdout), "stderr": strip_shell_chars(outcome.stderr),
        "return_code": outcome.return_code,
        "succeeded": ok, "failed": not ok,
    }
    if outcome.truncated:
        result["truncated"] = True  # the full output is in the execution's log
    if outcome.status is not None:
        return RunResult(outcome.status, result, describe_stop(outcome.status, ctx))
    if ok:
        return RunResult(SUCCEEDED, result)
    return RunResult(FAILED, result, describe_exit(outcome.return_code))


def describe_stop(status: str, ctx: RunContext) -> str:
    if status == TIMEOUT:
        return f"The action did not finish within {effective_timeout(ctx):g} s."
    return "The execution was canceled."


def describe_exit(return_code: int | None) -> str:
    if return_code is not None and return_code < 0:
        return f"The process was killed by signal {signal.Signals(-return_code).name}."
    return f"The process exited with code {return_code}."


def action_parameters(ctx: RunContext) -> dict[str, Any]:
    """The parameters meant for the script: the runner's own (cwd, env, timeout) left out."""
    own = RUNNER_PARAMETERS.get(ctx.runner_type, {})
    return {name: value for name, value in ctx.parameters.items() if name not in own}
