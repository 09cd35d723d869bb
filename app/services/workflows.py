"""Workflow control from the API: pause, resume, rerun from a task, and the definition check.

The workflow itself runs in a worker (tasks/runners/orquesta.py) and every status change is a
guarded transition (app/services/execution_transitions.py); this module asks for them and
wakes the workflows that must go on, after the commit (app/services/unit_of_work.py).
"""

from __future__ import annotations

from typing import Any

from app.db import db
from app.engine.runner_types import WORKFLOW_RUNNERS
from app.engine.workflows import (
    RERUN_STATE,
    Conductor,
    ExpressionError,
    WorkflowError,
    WorkflowSpec,
)
from app.errors import Conflict, ValidationError
from app.models import Action, Execution, Pack
from app.models.execution import RUNNER_STATE, TERMINAL
from app.pack_paths import EntryPointOutside, locate_entry_point, read_workflow_file
from app.services import execution_transitions as transitions
from app.services import executions
from app.services.pack_reader import pack_directory


def _workflow(execution: Execution) -> None:
    if execution.runner_type not in WORKFLOW_RUNNERS:
        raise Conflict(f"Execution {execution.id} runs {execution.action_ref!r}, which is not a workflow.",
                       {"runner_type": [execution.runner_type]})


def pause(execution: Execution) -> Execution:
    """``running → pausing`` (and ``paused`` once nothing of it runs), for it and its nested
    workflows; 409 unless it is a running workflow (flush only)."""
    _workflow(execution)
    if execution.id not in transitions.pause_tree(execution.id, list(WORKFLOW_RUNNERS)):
        db.session.refresh(execution)
        raise Conflict(f"Execution {execution.id} is {execution.status}; only a running workflow can be paused.",
                       {"status": [execution.status]})
    db.session.refresh(execution)
    return execution


def resume(execution: Execution) -> Execution:
    """``pausing | paused → running`` for it and its nested workflows, which are woken to start
    their next tasks; 409 unless it is pausing or paused (flush only)."""
    _workflow(execution)
    resumed = transitions.resume_tree(execution.id)
    if execution.id not in resumed:  # (what it resumed below it is rolled back with the 409)
        db.session.refresh(execution)
        raise Conflict(f"Execution {execution.id} is {execution.status}; only a paused workflow can be resumed.",
                       {"status": [execution.status]})
    executions.wake(resumed)
    db.session.refresh(execution)
    return execution


def workflow_file(action: Action, pack: Pack) -> WorkflowSpec:
    """The action's workflow definition, read from its pack on this host."""
    directory = pack_directory(pack.path)
    if directory is None:
        raise Conflict(f"The pack {pack.name!r} is not on this host; its workflow cannot be read.")
    try:
        path = locate_entry_point(directory, "actions", action.entry_point or "")
    except EntryPointOutside:
        path = None
    if path is None:
        raise Conflict(f"The workflow file {action.entry_point!r} of {action.ref!r} is not in its pack.")
    return read_workflow_file(path)


def rerun(original: Execution, tasks: list[str], overrides: dict[str, Any], user: str | None) -> Execution:
    """A new execution of the workflow that starts again at ``tasks`` (tasks of ``original``
    that failed), with what the tasks before them published (flush only)."""
    _workflow(original)
    if original.status not in TERMINAL:
        raise Conflict(f"Execution {original.id} is {original.status}; a workflow is rerun from a task once it "
                       "has ended.", {"status": [original.status]})
    if overrides:
        raise ValidationError("A rerun from tasks keeps the workflow's input; give no parameters.",
                              {"parameters": ["not allowed with tasks"]})
    action = db.session.get(Action, original.action_id) if original.action_id else None
    if action is None:
        raise Conflict(f"Action {original.action_ref!r} no longer exists; it cannot be rerun.")
    state = ((original.context or {}).get(RUNNER_STATE) or {}).get("workflow")
    if not isinstance(state, dict):
        raise Conflict(f"Execution {original.id} kept no workflow state to rerun from.")
    pack = db.session.get(Pack, action.pack_id)
    try:
        conductor = Conductor(workflow_file(action, pack))
        fresh = conductor.rerun(state, tasks)
    except (WorkflowError, ExpressionError) as exc:
        raise ValidationError(str(exc), {"tasks": [str(exc)]}) from None
    values = executions.rerun_values(original, action, {})
    context = {"rerun_of": original.id, "rerun_tasks": list(tasks), RUNNER_STATE: {RERUN_STATE: fresh}}
    return executions.create_execution(action, values, user=user, rerun_of=original.id, context=context)
