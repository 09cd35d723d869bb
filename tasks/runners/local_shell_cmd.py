"""local-shell-cmd: ``/bin/sh -c <cmd>`` on the worker, output streamed to the log.

``cmd`` arrives rendered; templates in it were rendered with every substituted value
shell-quoted (app/engine/templates.py), so parameter values cannot inject shell syntax.
"""

from __future__ import annotations

from tasks.runners.base import FAILED, RunContext, Runner, RunResult, register
from tasks.runners.common import (
    child_environment,
    extra_env,
    shell_result,
    start_error,
    working_directory,
)
from tasks.runners.process import run_process


@register
class LocalShellCmdRunner(Runner):
    name = "local-shell-cmd"

    def run(self, ctx: RunContext) -> RunResult:
        cmd = ctx.parameters.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            return RunResult(FAILED, {}, "The local-shell-cmd runner needs a non-empty 'cmd' parameter.")
        env = extra_env(ctx)
        if env is None:
            return RunResult(FAILED, {}, "The 'env' parameter must be an object of strings.")
        try:
            outcome = run_process(["/bin/sh", "-c", cmd], ctx, cwd=working_directory(ctx),
                                  env=child_environment(ctx, env))
        except (OSError, ValueError) as exc:
            return start_error(exc)
        return shell_result(outcome, ctx)
