"""``test-tree``: a runner that starts child executions and waits for them, holding no worker.

It drives the container's waiting protocol as a workflow runner does (tasks/runners/base.py):
``run`` starts one child per item of its ``children`` parameter (``{action, parameters,
name}``) and answers ``RunResult.wait("children")``; each ``resume`` looks at the children
and waits again until all have ended, then succeeds (or fails if one did not succeed) with
every child's status and how many times it was resumed.
"""

from __future__ import annotations

from tasks.runners.base import (
    FAILED,
    ON_CHILDREN,
    SUCCEEDED,
    RunContext,
    Runner,
    RunResult,
    register,
)

RUNNER_TYPE = "test-tree"


@register
class TreeRunner(Runner):
    name = RUNNER_TYPE

    def run(self, ctx: RunContext) -> RunResult:
        for index, spec in enumerate(ctx.parameters.get("children") or []):
            ctx.children.start(spec["action"], spec.get("parameters") or {}, task_name=spec.get("name") or f"c{index}")
        ctx.emit("stdout", f"started {len(ctx.parameters.get('children') or [])} children")
        return RunResult.wait(ON_CHILDREN, {"resumes": 0})

    def resume(self, ctx: RunContext) -> RunResult:
        state = {"resumes": int(ctx.state.get("resumes", 0)) + 1}
        children = ctx.children.states()
        if any(not child.ended for child in children):
            return RunResult.wait(ON_CHILDREN, state)
        ctx.emit("stdout", f"all {len(children)} children ended")
        statuses = {child.task_name: child.status for child in children}
        result = {"children": statuses, **state}
        if any(status != SUCCEEDED for status in statuses.values()):
            return RunResult(FAILED, result, "A child did not succeed.")
        return RunResult(SUCCEEDED, result)
