"""python-script: run a pack's Python action (a StackStorm ``Action`` subclass) in a child.

The child is ``python -I -X utf8 -u python_wrapper.py`` as the action's user: isolated mode
ignores PYTHON* variables, the user site and the current directory; the wrapper puts the
pack's own paths on ``sys.path``. Parameters, config and the run token the action's
datastore calls use (with the API's address: ``ST2_AUTH_TOKEN``/``ST2_API_URL``) go in on
stdin, never on a command line or in the environment another user could read; the outcome
comes back in a file in the action's private directory, and prints stream as log lines.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

from flask import current_app, has_app_context

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
from tasks.runners.isolation import Isolation, runtime_copy, sandbox
from tasks.runners.process import run_process

RESULT_CAP = 16 * 1024 * 1024  # bytes of JSON result we accept from the action


def read_outcome(path: str) -> dict[str, Any] | None:
    """What the wrapper reported, or None when it reported nothing usable.

    The action's user owns the directory: the file may have been swapped for a symlink to
    a file only the worker may read, or a FIFO that would block the worker. Only a regular
    file is read, without following links.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with open(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        if info.st_size > RESULT_CAP:
            return {"status": "failed", "result": None, "error": f"The result is larger than {RESULT_CAP} bytes."}
        try:
            outcome = json.loads(file.read(RESULT_CAP + 1).decode("utf-8"))
        except ValueError:
            return None
    return outcome if isinstance(outcome, dict) and outcome.get("status") in (SUCCEEDED, FAILED) else None


def datastore_api(token: str | None) -> dict[str, str] | None:
    """What the child needs to reach the keys API (``ST2_API_URL`` and ``ST2_AUTH_TOKEN``), if it may."""
    url = current_app.config.get("PATCHBAY_API_URL") if has_app_context() else ""
    return {"url": f"{url}/api/v1", "token": token} if url and token else None


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
        lib = os.path.join(os.path.realpath(ctx.pack_path or ""), "actions", "lib")
        isolation = ctx.isolation or Isolation()
        try:
            env = extra_env(ctx)
            with sandbox(isolation, ctx.execution_id) as box:
                box.check_readable(path, "The action file")
                runtime_copy("st2compat")  # the wrapper finds it beside itself
                request = {
                    "file": path, "parameters": action_parameters(ctx), "config": ctx.config,
                    "datastore": ctx.datastore, "pack": ctx.pack, "api": datastore_api(ctx.api_token),
                    "lib_paths": [lib] if os.path.isdir(lib) else [],
                    "result_path": os.path.join(box.scratch, "outcome.json"),
                }
                outcome = run_process(
                    [isolation.python_interpreter(), "-I", "-X", "utf8", "-u", runtime_copy("python_wrapper.py")],
                    ctx, box, cwd=working_directory(ctx, default=os.path.dirname(path)),
                    env=child_environment(ctx, env),
                    stdin_data=json.dumps(request, default=str).encode(),
                )
                reported = read_outcome(request["result_path"])
        except (OSError, ValueError, RuntimeError) as exc:
            return start_error(exc)
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
