"""local-shell-cmd: the rendered ``cmd`` run by ``/bin/sh`` as the action's user.

``cmd`` arrives rendered; templates in it were rendered with every substituted value
shell-quoted (app/engine/templates.py), so parameter values cannot inject shell syntax.
The command is handed to the shell in a private file, never on its command line, which
every user of the host can read in ``/proc/*/cmdline`` (a rendered secret would show).
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
from tasks.runners.isolation import sandbox
from tasks.runners.process import run_process


@register
class LocalShellCmdRunner(Runner):
    name = "local-shell-cmd"

    def run(self, ctx: RunContext) -> RunResult:
        cmd = ctx.parameters.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            return RunResult(FAILED, {}, "The local-shell-cmd runner needs a non-empty 'cmd' parameter.")
        try:
            env = extra_env(ctx)
            with sandbox(ctx.isolation, ctx.execution_id) as box:
                script = box.private_file("command.sh", cmd.encode())
                outcome = run_process(["/bin/sh", script], ctx, box, cwd=working_directory(ctx),
                                      env=child_environment(ctx, env))
        except (OSError, ValueError, RuntimeError) as exc:
            return start_error(exc)
        return shell_result(outcome, ctx)
