"""local-shell-script: run a script from the pack with the action's parameters.

As StackStorm does, parameters become ``--name=value`` arguments, followed by those with a
``position`` in position order; every parameter is also in the environment as
``ST2_ACTION_<NAME>`` and ``PATCHBAY_PARAM_<NAME>``.

Secret parameters never become arguments (every user of the host can read a command line
in ``/proc/*/cmdline``). With its own uid the script finds them in its environment only;
running as the worker's user, where another action could read that environment, each is
in a file only that user may read, named by ``PATCHBAY_SECRET_FILE_<NAME>``.
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
from tasks.runners.isolation import Sandbox, readable_by_others, sandbox
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


def secret_files(box: Sandbox, secrets: dict[str, Any]) -> dict[str, str]:
    """Each secret in a private file; the environment names the files."""
    return {f"PATCHBAY_SECRET_FILE_{name.upper()}": box.private_file(f"secret-{name}", env_value(value).encode())
            for name, value in secrets.items() if value is not None}


@register
class LocalShellScriptRunner(Runner):
    name = "local-shell-script"

    def run(self, ctx: RunContext) -> RunResult:
        try:
            script = entry_point_path(ctx)
        except EntryPointError as exc:
            return RunResult(FAILED, {}, str(exc))
        params = action_parameters(ctx)
        secret = {name for name in params if (ctx.parameter_schema.get(name) or {}).get("secret")}
        plain = {name: value for name, value in params.items() if name not in secret}
        try:
            env = extra_env(ctx)
            with sandbox(ctx.isolation, ctx.execution_id) as box:
                box.check_readable(script, "The script")
                # A script without the executable bit (for the action's user) runs through bash.
                runnable = readable_by_others(script, execute=True) if box.uid is not None \
                    else os.access(script, os.X_OK)
                program = [script] if runnable else ["/bin/bash", script]
                hidden = {name: params[name] for name in secret}
                given = parameter_environment(hidden) if box.uid is not None else secret_files(box, hidden)
                outcome = run_process(
                    program + script_arguments(plain, ctx.parameter_schema), ctx, box,
                    cwd=working_directory(ctx, default=os.path.dirname(script)),
                    env=child_environment(ctx, {**parameter_environment(plain), **given, **env}),
                )
        except (OSError, ValueError, RuntimeError) as exc:
            return start_error(exc)
        return shell_result(outcome, ctx)
