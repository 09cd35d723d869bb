"""local-shell-script: run a script from the pack with the action's parameters.

As StackStorm does, parameters become ``--name=value`` arguments, followed by those with a
``position`` in position order; every parameter is also in the environment as
``ST2_ACTION_<NAME>`` and ``PATCHBAY_PARAM_<NAME>``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tasks.runners.base import FAILED, RunContext, Runner, RunResult, register
from tasks.runners.common import (
    action_parameters,
    child_environment,
    env_value,
    extra_env,
    shell_result,
    start_error,
    working_directory,
)
from tasks.runners.entry_point import EntryPointError, entry_point_path
from tasks.runners.process import run_process


def positional_text(value: Any, kind: Any) -> str:
    """A positional value as StackStorm writes it: booleans 1/0, lists comma-joined, objects JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list) and kind != "object":
        return ",".join(v if isinstance(v, str) else json.dumps(v) for v in value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def script_arguments(params: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    named: list[str] = []
    positional: list[tuple[int, str]] = []
    for name, value in params.items():
        definition = schema.get(name) if isinstance(schema.get(name), dict) else {}
        position = definition.get("position")
        if isinstance(position, int) and not isinstance(position, bool):
            positional.append((position, positional_text(value, definition.get("type"))))
        elif value is None or value == "" or value is False:
            continue  # StackStorm leaves out empty values and false flags
        elif value is True:
            named.append(f"--{name}")
        else:
            named.append(f"--{name}={env_value(value)}")
    return named + [text for _, text in sorted(positional)]


def parameter_environment(params: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, value in params.items():
        if value is not None:
            env[f"ST2_ACTION_{name.upper()}"] = env[f"PATCHBAY_PARAM_{name.upper()}"] = env_value(value)
    return env


@register
class LocalShellScriptRunner(Runner):
    name = "local-shell-script"

    def run(self, ctx: RunContext) -> RunResult:
        try:
            script = entry_point_path(ctx)
        except EntryPointError as exc:
            return RunResult(FAILED, {}, str(exc))
        env = extra_env(ctx)
        if env is None:
            return RunResult(FAILED, {}, "The 'env' parameter must be an object of strings.")
        params = action_parameters(ctx)
        # A script without the executable bit still runs, through bash.
        program = [script] if os.access(script, os.X_OK) else ["/bin/bash", script]
        try:
            outcome = run_process(
                program + script_arguments(params, ctx.parameter_schema), ctx,
                cwd=working_directory(ctx, default=os.path.dirname(script)),
                env=child_environment(ctx, {**parameter_environment(params), **env}),
            )
        except (OSError, ValueError) as exc:
            return start_error(exc)
        return shell_result(outcome, ctx)
