"""The noop runner: succeeds at once with an empty result (handy in rules and workflows)."""

from __future__ import annotations

from tasks.runners.base import SUCCEEDED, RunContext, Runner, RunResult, register


@register
class NoopRunner(Runner):
    name = "noop"

    def run(self, ctx: RunContext) -> RunResult:
        return RunResult(SUCCEEDED, {})
