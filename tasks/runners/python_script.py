"""python-script: run a pack's Python action (a StackStorm ``Action`` subclass) in a child.

The child is ``python -u python_wrapper.py``: parameters, config and datastore values go in
on stdin, the outcome comes back in a temporary file, and prints stream as log lines.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

from tasks.runners.base import FAILED, SUCCEEDED, RunContext, Runner, RunResult, register
from tasks.runners.common import (
    action_parameters,
    child_environment,
    describe_exit,
    describe_stop,
    extra_env,
    start_error,
    working_directory,
)
from tasks.runners.entry_point import EntryPointError, entry_point_path
from tasks.runners.process import run_process

WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_wrapper.py")
RESULT_CAP = 16 * 1024 * 1024  # bytes of JSON result we accept from the action


def read_outcome(path: str) -> dict[str, Any] | None:
    """What the wrapper reported, or None when it reported nothing usable."""
    try:
        if os.path.getsize(path) > RESULT_CAP:
            return {"status": "failed", "result": None, "error": f"The result is larger than {RESULT_CAP} bytes."}
        with open(path, encoding="utf-8") as file:
            outcome = json.load(file)
    except (OSError, ValueError):
        return None
    return outcome if isinstance(outcome, dict) and outcome.get("status") in (SUCCEEDED, FAILED) else None


@register
class PythonScriptRunner(Runner):
    name = "python-script"

    def run(self, ctx: RunContext) -> RunResult:
        try:
            path = entry_point_path(ctx)
        except EntryPointError as exc:
            return RunResult(FAILED, {}, str(exc))
        if not path.endswith(".py"):
            return RunResult(FAILED, {}, f"The entry_point {ctx.entry_point!r} is not a .py file.")
        env = extra_env(ctx)
        if env is None:
            return RunResult(FAILED, {}, "The 'env' parameter must be an object of strings.")
        lib = os.path.join(os.path.realpath(ctx.pack_path or ""), "actions", "lib")
        with tempfile.TemporaryDirectory(prefix="patchbay-run-") as scratch:
            request = {
                "file": path, "parameters": action_parameters(ctx), "config": ctx.config,
                "datastore": ctx.datastore, "pack": ctx.pack,
                "lib_paths": [lib] if os.path.isdir(lib) else [],
                "result_path": os.path.join(scratch, "outcome.json"),
            }
            try:
                outcome = run_process(
                    [sys.executable, "-u", WRAPPER], ctx,
                    cwd=working_directory(ctx, default=os.path.dirname(path)),
                    env=child_environment(ctx, {"PYTHONIOENCODING": "utf-8", **env}),
                    stdin_data=json.dumps(request, default=str).encode(),
                )
            except (OSError, ValueError) as exc:
                return start_error(exc)
            reported = read_outcome(request["result_path"])
        result: dict[str, Any] = {
            "result": reported.get("result") if reported else None,
            "stdout": outcome.stdout, "stderr": outcome.stderr, "exit_code": outcome.return_code,
        }
        if outcome.status is not None:
            return RunResult(outcome.status, result, describe_stop(outcome.status, ctx))
        if reported is None:
            return RunResult(FAILED, result, f"The action reported no result. {describe_exit(outcome.return_code)}")
        if reported["status"] == SUCCEEDED:
            return RunResult(SUCCEEDED, result)
        return RunResult(FAILED, result, reported.get("error") or "The action reported that it failed.")
