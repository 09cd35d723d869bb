"""``orquesta`` (and its alias ``workflow``): StackStorm's Orquesta workflows, as child executions.

The language is pure and lives in app/engine/workflows: the ``Conductor`` says which tasks
to run next from a JSON state. This runner drives it over the container's waiting protocol
(tasks/runners/base.py): each step records the children that ended, starts what the
conductor asks for as child executions (``ctx.children.start``; the container sends one
step's plain-action children as one Celery chord), and waits — holding no worker — until a
child's end (or the chord's callback) wakes it. The state between steps is the execution's
own (``RunResult.wait(state)``, kept in PostgreSQL), so a restarted worker, a redelivered
message or a lost callback loses nothing: what ran is read from the children's rows.

A pausing workflow (``ctx.pausing``) and a canceling one start nothing new; the container
ends or pauses it once its running children have ended.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from app.engine.workflows import (
    RERUN_STATE,
    Conductor,
    ExpressionError,
    WorkflowError,
    WorkflowSpec,
)
from app.errors import APIError
from app.pack_paths import read_workflow_file
from tasks.runners.base import (
    CANCELED,
    FAILED,
    ON_CHILDREN,
    SUCCEEDED,
    RunContext,
    Runner,
    RunResult,
    register,
)
from tasks.runners.entry_point import EntryPointError, entry_point_path


@functools.lru_cache(maxsize=256)
def _spec(path: str, mtime_ns: int, size: int) -> WorkflowSpec:
    return read_workflow_file(path)


def workflow_spec(ctx: RunContext) -> WorkflowSpec:
    """The workflow file of the action, parsed once per version of the file."""
    path = entry_point_path(ctx)
    stat = os.stat(path)
    return _spec(path, stat.st_mtime_ns, stat.st_size)


@register
class OrquestaRunner(Runner):
    name = "orquesta"

    def run(self, ctx: RunContext) -> RunResult:
        try:
            conductor = Conductor(workflow_spec(ctx), kv=ctx.kv)
            rerun = ctx.state.get(RERUN_STATE)
            workflow = rerun if rerun is not None else conductor.start(dict(ctx.parameters))
        except (EntryPointError, WorkflowError, ExpressionError, OSError) as exc:
            return RunResult(FAILED, {"errors": [{"type": "error", "message": str(exc)}]}, str(exc))
        ctx.emit("system", "workflow started" if rerun is None else "workflow rerun started")
        return self._advance(ctx, conductor, {"workflow": workflow, "running": {}})

    def resume(self, ctx: RunContext) -> RunResult:
        try:
            conductor = Conductor(workflow_spec(ctx), kv=ctx.kv)
        except (EntryPointError, WorkflowError, OSError) as exc:
            return RunResult(FAILED, {"errors": [{"type": "error", "message": str(exc)}]}, str(exc))
        state = {"workflow": ctx.state["workflow"], "running": dict(ctx.state.get("running") or {})}
        running: dict[str, str] = state["running"]
        if running:
            for child in ctx.children.states([int(child_id) for child_id in running]):
                if child.ended:
                    key = running.pop(str(child.id))
                    self._ended(ctx, conductor, state, key, child.status, child.result, child.error, child.task_name)
        return self._advance(ctx, conductor, state)

    # --- one step ---------------------------------------------------------------------------

    def _ended(self, ctx: RunContext, conductor: Conductor, state: dict[str, Any], key: str, status: str,
               result: Any, error: str | None, task: str | None) -> None:
        ctx.emit("system", f"task {task or key} {status}")
        try:
            conductor.task_ended(state["workflow"], key, status, result, error)
        except (WorkflowError, ExpressionError) as exc:
            # A transition's expression failed: Orquesta fails the workflow with that error.
            state.setdefault("errors", []).append({"type": "error", "message": str(exc), "task_id": task or key})

    def _advance(self, ctx: RunContext, conductor: Conductor, state: dict[str, Any]) -> RunResult:
        workflow = state["workflow"]
        running: dict[str, str] = state["running"]
        while not (ctx.canceling or ctx.pausing or state.get("errors")) and conductor.status(workflow) == "running":
            try:
                requests = conductor.next_requests(workflow)
            except (WorkflowError, ExpressionError) as exc:
                state.setdefault("errors", []).append({"type": "error", "message": str(exc)})
                break
            if not requests:
                break
            refused = False
            for request in requests:
                try:
                    child_id = ctx.children.start(request.action, request.input, task_name=request.task,
                                                  item_index=request.item_index, delay=request.delay)
                except APIError as exc:
                    # No such action, or it refuses the input: the task fails (its transitions decide).
                    message = f"{exc.message} {exc.errors}" if exc.errors else exc.message
                    self._ended(ctx, conductor, state, request.key, FAILED, None, message, request.task)
                    refused = True
                    continue
                running[str(child_id)] = request.key
                ctx.emit("system", f"task {request.task}" + (f"[{request.item_index}]" if request.item_index is not None
                                                               else "") + f" started as execution {child_id}")
            if not refused:
                break  # what could start has started; the rest waits for ends
        if running:
            return RunResult.wait(ON_CHILDREN, state)
        outcome = self._end(ctx, conductor, state)
        outcome.state = state  # kept past the end: a rerun from a task starts from it
        return outcome

    def _end(self, ctx: RunContext, conductor: Conductor, state: dict[str, Any]) -> RunResult:
        workflow = state["workflow"]
        status = conductor.status(workflow)
        if ctx.canceling:
            return RunResult(CANCELED, self._result(conductor, workflow, state), "The workflow was canceled.")
        if status == "running" and ctx.pausing and not state.get("errors"):
            return RunResult.wait(ON_CHILDREN, state)  # paused: nothing runs until it is resumed
        result = self._result(conductor, workflow, state)
        if status == "succeeded" and not state.get("errors"):
            ctx.emit("system", "workflow succeeded")
            return RunResult(SUCCEEDED, result)
        if status == "canceled":
            return RunResult(CANCELED, result, "A task of the workflow was canceled.")
        errors = result.get("errors") or [{"message": "the workflow has no task left to run"}]
        message = "; ".join(str(error.get("message")) for error in errors[:5])
        ctx.emit("system", f"workflow failed: {message}")
        return RunResult(FAILED, result, message)

    @staticmethod
    def _result(conductor: Conductor, workflow: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        try:
            output = conductor.output(workflow)
        except (WorkflowError, ExpressionError) as exc:
            output = None
            state.setdefault("errors", []).append({"type": "error", "message": str(exc)})
        errors = [*conductor.errors(workflow), *state.get("errors", [])]
        result: dict[str, Any] = {"output": output}
        if errors:
            result["errors"] = errors
        return result


@register
class WorkflowRunner(OrquestaRunner):
    """``workflow``: the same runner under its older name."""

    name = "workflow"
