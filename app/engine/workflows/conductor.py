"""The Orquesta state machine: which task runs next, with what input, and how the workflow ends.

Every fact about a running workflow lives in one JSON-serialisable ``state`` dict that the
caller stores between steps (a PostgreSQL jsonb column, whose objects do not keep key order:
anything ordered is a list or carries a sequence number). The ``Conductor`` holds only the
spec and the datastore handle, so any process can continue any workflow.

State, in short:
  ``ctxs``    the contexts, stored once and referred to by index (a task's in-context, a
              transition's out-context), so a thousand items do not copy a context each;
  ``runs``    one record per task run (``"notify"``, ``"notify#2"``): its task, in-context,
              status, attempt, result, the contexts it ended with, and its with-items progress;
  ``staged``  runs waiting to start; ``ready`` with-items runs that may start more items;
  ``active``  request key -> [run key, item index] for everything requested and not ended;
  ``joins``   task -> arrivals at its barrier; ``halt`` None, "failed" or "canceled";
  ``latest``  task -> its latest run; ``unhandled`` failed runs no transition remedied;
  ``errors``  Orquesta-shaped errors, in the order they happened.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ExpressionError, WorkflowError
from .expressions import FAILED_STATUSES, ExpressionScope, evaluate
from .spec import ENGINE_COMMANDS, TaskSpec, WorkflowSpec

STATE_VERSION = 1
END_STATUSES = frozenset({"succeeded", "failed", "timeout", "canceled", "abandoned"})
COMMAND_RETRIES = 3  # the `retry` engine command: up to 3 times, no delay


@dataclass
class TaskRequest:
    key: str                 # unique id of this request within the workflow state
    task: str                # task name in the spec
    action: str              # action ref, e.g. "core.echo"
    input: dict              # rendered action input
    item_index: int | None   # with-items: the item's index
    delay: float | None      # seconds to wait before running


class Conductor:
    """Advances one workflow's state; holds nothing between calls but the spec."""

    def __init__(self, spec: WorkflowSpec, *, kv: Any = None) -> None:
        self.spec = spec
        self.kv = kv

    # -- starting ---------------------------------------------------------------------------

    def start(self, inputs: dict) -> dict:
        """A new state: input checked and defaulted, vars rendered, start tasks staged."""
        inputs = dict(inputs or {})
        known = {name for name, _default, _required in self.spec.input}
        unknown = sorted(set(inputs) - known)
        if unknown:
            raise WorkflowError(f"unknown input {', '.join(map(repr, unknown))}", file=self.spec.file,
                                field="input")
        context: dict[str, Any] = {}
        for name, default, required in self.spec.input:
            if name in inputs:
                context[name] = inputs[name]
            elif required:
                raise WorkflowError(f"input {name!r} is required", file=self.spec.file, field=f"input.{name}")
            else:
                context[name] = self._evaluate(default, ExpressionScope(ctx=context, kv=self.kv))
        given = dict(context)
        for name, value in self.spec.vars:
            context[name] = self._evaluate(value, ExpressionScope(ctx=context, kv=self.kv))
        state: dict[str, Any] = {
            "version": STATE_VERSION, "input": given, "ctxs": [context], "seq": 0, "runs": {}, "latest": {},
            "counts": {}, "staged": [], "ready": [], "active": {}, "joins": {}, "halt": None,
            "unhandled": [], "errors": [],
        }
        for name in self.spec.start:
            self._stage(state, name, 0)
        return state

    # -- requesting -------------------------------------------------------------------------

    def next_requests(self, state: dict, limit: int | None = None) -> list[TaskRequest]:
        """Take staged work, mark it running, and return what must be requested now."""
        requests: list[TaskRequest] = []
        while limit is None or len(requests) < limit:
            if state["halt"] is not None:
                self._drop_pending(state)  # keeps only what a transition to 'fail' listed beside it
            room = None if limit is None else limit - len(requests)
            if state["ready"]:
                requests.extend(self._start_items(state, room))
                if limit is not None and len(requests) >= limit:
                    break
            if not state["staged"]:
                break
            run_key = state["staged"].pop(0)
            request = self._start_run(state, run_key)
            if request is not None:
                requests.append(request)
        return requests

    def _start_run(self, state: dict, run_key: str) -> TaskRequest | None:
        run = state["runs"][run_key]
        task = self.spec.tasks[run["task"]]
        run["status"] = "running"
        if task.action is None:  # a task without an action succeeds at once
            self._finish(state, run_key, "succeeded", None, None)
            return None
        try:
            scope = self._scope(state, run)
            action = self._action(task, scope)
            delay = self._delay(task, run, scope)
            if task.items is None:
                request = TaskRequest(key=self._request_key(run_key, run, None), task=task.name, action=action,
                                      input=self._input(task, scope), item_index=None, delay=delay)
                state["active"][request.key] = [run_key, None]
                return request
            items = self._evaluate(task.items.items, scope)
            if not isinstance(items, list):
                raise ExpressionError(f"'with' items must be a list, not {type(items).__name__}")
            concurrency = self._evaluate(task.items.concurrency, scope)
            if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                            or concurrency < 1):
                raise ExpressionError(f"'with' concurrency must be a positive integer, not {concurrency!r}")
        except ExpressionError as exc:
            self._fail_run(state, run_key, str(exc))
            return None
        if not items:
            self._finish(state, run_key, "succeeded", [], None)
            return None
        run["items"] = {"values": items, "conc": concurrency, "next": 0, "running": 0, "done": 0,
                        "results": [None] * len(items), "failed": False, "canceled": False,
                        "action": action, "delay": delay}
        state["ready"].append(run_key)
        return None

    def _start_items(self, state: dict, room: int | None) -> list[TaskRequest]:
        requests: list[TaskRequest] = []
        pending, state["ready"] = state["ready"], []
        kept: list[str] = []
        for run_key in pending:
            run = state["runs"][run_key]
            items = run["items"]
            task = self.spec.tasks[run["task"]]
            total = len(items["values"])
            while state["halt"] is None and not items["canceled"] and items["next"] < total \
                    and (items["conc"] is None or items["running"] < items["conc"]) \
                    and (room is None or len(requests) < room):
                index = items["next"]
                items["next"] += 1
                try:
                    value = self._item_value(task, items["values"][index])
                    scope = self._scope(state, run, item=value)
                    rendered = self._input(task, scope)
                except ExpressionError as exc:
                    items["done"] += 1
                    items["failed"] = True
                    self._error(state, run["task"], f"item {index}: {exc}")
                    continue
                key = self._request_key(run_key, run, index)
                items["running"] += 1
                state["active"][key] = [run_key, index]
                requests.append(TaskRequest(key=key, task=task.name, action=items["action"], input=rendered,
                                            item_index=index, delay=items["delay"]))
            if items["next"] < total and state["halt"] is None and not items["canceled"]:
                kept.append(run_key)
            elif items["running"] == 0:
                self._finish_items(state, run_key)
        state["ready"] = kept + state["ready"]
        return requests

    # -- ending -----------------------------------------------------------------------------

    def task_ended(self, state: dict, key: str, status: str, result: Any, error: str | None = None) -> None:
        """Record how the request ``key`` ended and conduct what follows from it."""
        if status not in END_STATUSES:
            raise ValueError(f"unknown task status {status!r}")
        entry = state["active"].pop(key, None)
        if entry is None:
            return  # not running (already ended, or unknown): nothing changes
        run_key, index = entry
        run = state["runs"][run_key]
        if index is None:
            self._finish(state, run_key, status, result, error)
            return
        items = run["items"]
        items["results"][index] = result
        items["running"] -= 1
        items["done"] += 1
        if status == "canceled":
            items["canceled"] = True
        elif status in FAILED_STATUSES:
            items["failed"] = True
            self._error(state, run["task"], f"item {index}: {error or 'the action ' + status}", result)
        more = items["next"] < len(items["values"])
        if more and state["halt"] is None and not items["canceled"]:
            if run_key not in state["ready"]:
                state["ready"].append(run_key)
        elif items["running"] == 0:
            if run_key in state["ready"]:
                state["ready"].remove(run_key)
            self._finish_items(state, run_key)

    def _finish_items(self, state: dict, run_key: str) -> None:
        run = state["runs"][run_key]
        items = run["items"]
        status = "canceled" if items["canceled"] else "failed" if items["failed"] else "succeeded"
        if status == "succeeded" and items["next"] < len(items["values"]):
            # The workflow stopped before every item ran: the task ends unfinished, changing nothing.
            run["result"] = list(items["results"])
            self._end_run(state, run, "canceled")
            run["term"] = [run["ctx"]]
            return
        self._finish(state, run_key, status, list(items["results"]), None, items_error=False)

    def _finish(self, state: dict, run_key: str, status: str, result: Any, error: str | None,
                *, items_error: bool = True) -> None:
        run = state["runs"][run_key]
        task = self.spec.tasks[run["task"]]
        run["result"] = result
        if status == "canceled":
            self._end_run(state, run, status)
            run["term"] = [run["ctx"]]
            self._halt(state, "canceled")
            return
        if task.retry is not None and state["halt"] is None and self._retrying(state, run, task, status, result):
            return
        self._end_run(state, run, status)
        failed = status in FAILED_STATUSES
        if failed and items_error and run.get("items") is None:
            self._error(state, task.name, error or f"the action {status}", result)
        self._transitions(state, run_key, run, task, status, result, failed)

    def _retrying(self, state: dict, run: dict, task: TaskSpec, status: str, result: Any) -> bool:
        scope = self._scope(state, run, status=status, result=result)
        try:
            wanted = bool(self._evaluate(task.retry.when, scope))
            count = self._evaluate(task.retry.count, scope)
            delay = _seconds(self._evaluate(task.retry.delay, scope))
        except ExpressionError as exc:
            self._error(state, task.name, f"retry: {exc}")
            return False
        if not wanted or not isinstance(count, int) or run["attempt"] >= count:
            return False
        self._restage(state, run, delay, status)
        return True

    def _restage(self, state: dict, run: dict, delay: float | None, last_status: str) -> None:
        run["attempt"] += 1
        run["last_status"] = last_status
        run["status"] = "scheduled"
        run["retry_delay"] = delay
        run["items"] = None
        state["staged"].append(_run_key(run))

    def _transitions(self, state: dict, run_key: str, run: dict, task: TaskSpec, status: str, result: Any,
                     failed: bool) -> None:
        scope = self._scope(state, run, status=status, result=result)
        in_ctx = state["ctxs"][run["ctx"]]
        handled = False
        staged_any = False
        terminal: list[int] = []
        retry_command = False
        try:
            for transition in task.next:
                if transition.when is not None and not self._evaluate(transition.when, scope):
                    continue
                out_index = run["ctx"]
                if transition.publish:
                    out = dict(in_ctx)
                    for name, value in transition.publish:
                        out[name] = self._evaluate(value, _with_ctx(scope, out))
                    state["ctxs"].append(out)
                    out_index = len(state["ctxs"]) - 1
                targets = [name for name in transition.do if name not in ENGINE_COMMANDS]
                if "noop" in transition.do or targets:
                    handled = True
                if "retry" in transition.do:
                    retry_command = True
                staged: list[str] = []
                for target in targets:
                    if state["halt"] is None:
                        staged.extend(self._arrive(state, target, task.name, out_index))
                        staged_any = True
                if "fail" in transition.do:
                    # Tasks listed beside 'fail' still run (to log or notify); nothing else starts.
                    for key in staged:
                        state["runs"][key]["keep"] = True
                    self._error(state, task.name, f"task {task.name!r} transitioned to 'fail'")
                    self._halt(state, "failed")
                if not staged and (not targets or state["halt"] is not None):
                    terminal.append(out_index)
        except ExpressionError as exc:
            self._error(state, task.name, str(exc))
            self._halt(state, "failed")
            run["term"] = [run["ctx"]]
            return
        if retry_command and state["halt"] is None and run.get("command_retries", 0) < COMMAND_RETRIES:
            run["command_retries"] = run.get("command_retries", 0) + 1
            self._restage(state, run, None, status)
            return
        run["term"] = terminal if (terminal or staged_any) else [run["ctx"]]
        if failed and not handled:
            state["unhandled"].append(run_key)
            self._halt(state, "failed")

    def _arrive(self, state: dict, target: str, source: str, ctx_index: int) -> list[str]:
        """Stage ``target`` (or record the arrival at its join); returns the runs staged."""
        spec = self.spec.tasks[target]
        if spec.join is None:
            return [self._stage(state, target, ctx_index)]
        staged = []
        inbound = self.spec.inbound[target]
        barrier = state["joins"].setdefault(target, {"arrived": [], "fired": False})
        barrier["arrived"].append([source, ctx_index])
        sources = {name for name, _index in barrier["arrived"]}
        needed = len(inbound) if spec.join == "all" else spec.join
        if not barrier["fired"] and len(sources) >= needed:
            merged: dict[str, Any] = {}
            for _name, index in barrier["arrived"]:
                merged.update(state["ctxs"][index])
            state["ctxs"].append(merged)
            staged.append(self._stage(state, target, len(state["ctxs"]) - 1))
            barrier["fired"] = True
        if len(sources) >= len(inbound):  # every inbound task arrived: the next round starts afresh
            del state["joins"][target]
        return staged

    # -- state helpers ----------------------------------------------------------------------

    def _stage(self, state: dict, task: str, ctx_index: int) -> str:
        count = state["counts"].get(task, 0) + 1
        state["counts"][task] = count
        run_key = task if count == 1 else f"{task}#{count}"
        state["seq"] += 1
        state["runs"][run_key] = {"key": run_key, "task": task, "n": state["seq"], "ctx": ctx_index,
                                  "status": "scheduled", "attempt": 0, "result": None, "end": None,
                                  "term": None, "items": None}
        state["latest"][task] = run_key
        state["staged"].append(run_key)
        return run_key

    def _end_run(self, state: dict, run: dict, status: str) -> None:
        state["seq"] += 1
        run["status"] = status
        run["end"] = state["seq"]

    def _fail_run(self, state: dict, run_key: str, message: str) -> None:
        run = state["runs"][run_key]
        self._end_run(state, run, "failed")
        run["term"] = [run["ctx"]]
        self._error(state, run["task"], message)
        state["unhandled"].append(run_key)
        self._halt(state, "failed")

    def _halt(self, state: dict, why: str) -> None:
        if state["halt"] != "canceled":
            state["halt"] = why
        self._drop_pending(state)

    def _drop_pending(self, state: dict) -> None:
        kept = []
        for run_key in state["staged"]:
            run = state["runs"].get(run_key)
            if run is None:
                continue
            if run.get("keep") and state["halt"] != "canceled":
                kept.append(run_key)
            elif run["attempt"] == 0 and run["end"] is None:
                del state["runs"][run_key]  # never started: as if never staged
                self._forget(state, run)
            else:  # a retry that will not happen: the last attempt's status stands
                self._end_run(state, run, run.get("last_status") or "failed")
                run["term"] = [run["ctx"]]
        state["staged"] = kept
        pending, state["ready"] = state["ready"], []
        for run_key in pending:
            if state["runs"][run_key]["items"]["running"] == 0:
                self._finish_items(state, run_key)
        state["joins"] = {}

    def _forget(self, state: dict, run: dict) -> None:
        task = run["task"]
        state["counts"][task] -= 1
        earlier = [r for r in state["runs"].values() if r["task"] == task]
        if earlier:
            state["latest"][task] = max(earlier, key=lambda r: r["n"])["key"]
        else:
            state["latest"].pop(task, None)

    def _error(self, state: dict, task: str | None, message: str, result: Any = None) -> None:
        error: dict[str, Any] = {"type": "error", "message": message}
        if task is not None:
            error["task_id"] = task
        if result is not None:
            error["result"] = result
        state["errors"].append(error)

    def _request_key(self, run_key: str, run: dict, index: int | None) -> str:
        key = run_key if run["attempt"] == 0 else f"{run_key}~{run['attempt']}"
        return key if index is None else f"{key}[{index}]"

    # -- rendering --------------------------------------------------------------------------

    def _scope(self, state: dict, run: dict, *, status: str | None = None, result: Any = None,
               item: Any = None) -> ExpressionScope:
        runs = state["runs"]
        latest = state["latest"]

        def statuses(name: str) -> str | None:
            key = latest.get(name)
            return runs[key]["status"] if key in runs else None

        scope = ExpressionScope(ctx=state["ctxs"][run["ctx"]], task=run["task"], status=status, result=result,
                                statuses=statuses, kv=self.kv)
        if item is not None:
            scope.item = item[0]
        return scope

    def _evaluate(self, value: Any, scope: ExpressionScope) -> Any:
        return evaluate(value, scope)

    def _item_value(self, task: TaskSpec, value: Any) -> tuple[Any]:
        names = task.items.names
        if not names:
            return (value,)
        if len(names) == 1:
            return ({names[0]: value},)
        if not isinstance(value, list) or len(value) != len(names):
            raise ExpressionError(f"an item must be a list of {len(names)} values for {', '.join(names)}")
        return (dict(zip(names, value, strict=True)),)

    def _action(self, task: TaskSpec, scope: ExpressionScope) -> str:
        action = self._evaluate(task.action, scope)
        if not isinstance(action, str) or "." not in action:
            raise ExpressionError(f"the action {action!r} is not an action ref 'pack.name'")
        return action

    def _input(self, task: TaskSpec, scope: ExpressionScope) -> dict:
        return {name: self._evaluate(value, scope) for name, value in task.input.items()}

    def _delay(self, task: TaskSpec, run: dict, scope: ExpressionScope) -> float | None:
        if run["attempt"]:
            return run.get("retry_delay")
        delay = self._evaluate(task.delay, scope)
        return _seconds(delay)

    # -- reading ----------------------------------------------------------------------------

    def status(self, state: dict) -> str:
        """"running" while anything runs or waits to; else "succeeded", "failed" or "canceled"."""
        if state["active"] or state["staged"] or state["ready"]:
            return "running"
        if state["halt"] == "canceled":
            return "canceled"
        if state["halt"] == "failed" or state["unhandled"]:
            return "failed"
        return "succeeded"

    def active(self, state: dict) -> list[str]:
        """Keys of the requests running now."""
        return sorted(state["active"])

    def errors(self, state: dict) -> list[dict]:
        """Orquesta-shaped errors: ``{"type": "error", "message": ..., "task_id": ...}``."""
        return copy.deepcopy(state["errors"])

    def task_states(self, state: dict) -> dict[str, str]:
        """Task name -> the status of its latest run."""
        return {task: state["runs"][key]["status"] for task, key in state["latest"].items() if key in state["runs"]}

    def context(self, state: dict) -> dict:
        """The merge of the start context and every ended branch's context, in the order they ended."""
        merged = dict(state["ctxs"][0])
        ended = sorted((run for run in state["runs"].values() if run.get("term")), key=lambda run: run["end"] or 0)
        for run in ended:
            for index in run["term"]:
                merged.update(state["ctxs"][index])
        return merged

    def output(self, state: dict) -> dict:
        """The workflow's ``output`` rendered over the final context. An entry that cannot be
        rendered is left out and recorded in errors(), and a workflow that had succeeded fails."""
        context = self.context(state)
        scope = ExpressionScope(ctx=context, kv=self.kv, statuses=lambda name: self.task_states(state).get(name))
        output: dict[str, Any] = {}
        for name, value in self.spec.output:
            try:
                output[name] = evaluate(value, scope)
            except ExpressionError as exc:
                if not any(e.get("message") == f"output {name!r}: {exc}" for e in state["errors"]):
                    self._error(state, None, f"output {name!r}: {exc}")
                if self.status(state) == "succeeded":
                    state["halt"] = "failed"
        return output

    # -- rerun ------------------------------------------------------------------------------

    def rerun(self, state: dict, tasks: list[str]) -> dict:
        """A new state that runs the named failed tasks again, keeping what succeeded."""
        if self.status(state) == "running":
            raise WorkflowError("the workflow is still running", file=self.spec.file, field="tasks")
        new = copy.deepcopy(state)
        if not tasks:
            raise WorkflowError("name at least one task to rerun", file=self.spec.file, field="tasks")
        for name in tasks:
            if name not in self.spec.tasks:
                raise WorkflowError(f"unknown task {name!r}", file=self.spec.file, task=name, field="tasks")
            key = new["latest"].get(name)
            run = new["runs"].get(key) if key else None
            if run is None:
                raise WorkflowError("the task did not run", file=self.spec.file, task=name, field="tasks")
            if run["status"] not in FAILED_STATUSES | {"canceled"}:
                raise WorkflowError(f"the task did not fail (it {run['status']})", file=self.spec.file, task=name,
                                    field="tasks")
        for name in tasks:
            old = new["runs"][new["latest"][name]]
            old["term"] = None  # a failed branch being rerun adds nothing to the final context
            new["unhandled"] = [key for key in new["unhandled"] if key != old["key"]]
            new["errors"] = [error for error in new["errors"] if error.get("task_id") != name]
            self._stage(new, name, old["ctx"])
        new["halt"] = None
        return new


def _run_key(run: Mapping[str, Any]) -> str:
    return run["key"]


def _with_ctx(scope: ExpressionScope, ctx: Mapping[str, Any]) -> ExpressionScope:
    return ExpressionScope(ctx=ctx, task=scope.task, status=scope.status, result=scope.result, item=scope.item,
                           statuses=scope.statuses, kv=scope.kv)


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ExpressionError(f"a delay must be a number of seconds, not {value!r}")
    try:
        seconds = float(value)
    except ValueError:
        raise ExpressionError(f"a delay must be a number of seconds, not {value!r}") from None
    if seconds < 0:
        raise ExpressionError(f"a delay cannot be negative ({seconds})")
    return seconds or None
