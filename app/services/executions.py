"""Executions: create (manual, rule, rerun, retry, child), enqueue, cancel, look up.

A new execution row stores its parameters with secret values replaced by ``********``; the
real values go to Vault at ``<VAULT_PREFIX>/executions/<id>`` before the row is committed
(and are deleted again if the transaction rolls back), and the worker reads them from
there. The broker message carries the execution id only, and is sent only once the row is
committed (app/services/unit_of_work.py): a caller creates, commits, and is done.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import update

from app.db import db, utcnow
from app.engine.caller_parameters import caller_errors, given_timeout
from app.engine.parameters import (
    HEADERS,
    MASK,
    mask_secrets,
    secret_names,
    vault_secrets,
    with_defaults,
)
from app.engine.runner_types import effective_parameters
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import redis_client
from app.logging import request_id_var
from app.models import Action, Execution
from app.models.execution import CANCELING, REQUESTED, SCHEDULED
from app.services import action_cache, execution_events, execution_logs, queue, unit_of_work, vault
from app.services import execution_transitions as transitions
from app.services.action_cache import ActionFacts
from app.services.execution_transitions import requested_parameters
from app.services.masking import mask_text, mask_value, secret_strings
from app.services.rows import RowInserter, row_by_id

log = logging.getLogger("patchbay.executions")

# revoke(terminate=True) sends this to the pool process running the task; run_execution
# handles it by stopping its runner (which kills the process tree) instead of dying.
TERMINATE_SIGNAL = "SIGUSR2"
# Lets a hung runner be killed by Celery's hard time limit well after its own timeout.
TIME_LIMIT_GRACE_SECONDS = 60


def cancel_key(execution_id: int) -> str:
    return f"patchbay:execution:{execution_id}:cancel"


def get_execution(execution_id: int) -> Execution:
    execution = row_by_id(Execution, execution_id)
    if execution is None:
        raise NotFound(f"Execution {execution_id} does not exist.")
    return execution


def parameter_schema(action: Action, execution: Execution | None = None) -> dict[str, Any]:
    """The action's effective parameters; for an execution, those it was given secret values
    in (``context.secret_parameters``: a workflow passing a value it decrypted) are secret too."""
    schema = effective_parameters(action.runner_type, action.parameters)
    extra = (execution.context or {}).get("secret_parameters") if execution is not None else None
    return _marked_secret(schema, extra) if extra else schema


def _marked_secret(schema: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {**schema, **{name: {**(schema.get(name) or {}), "secret": True} for name in names}}


def execution_timeout(action: Action, merged: dict[str, Any], given: dict[str, Any]) -> int:
    """The caller's ``timeout`` (already within the action's cap), else action.timeout, else
    the ``timeout`` parameter's default, else EXECUTION_DEFAULT_TIMEOUT."""
    caller_timeout = given_timeout(given)
    if caller_timeout is not None:
        return caller_timeout
    if action.timeout:
        return int(action.timeout)
    runner_timeout = merged.get("timeout")
    if isinstance(runner_timeout, int | float) and not isinstance(runner_timeout, bool) and runner_timeout > 0:
        return max(1, math.ceil(runner_timeout))
    return int(current_app.config["EXECUTION_DEFAULT_TIMEOUT"])


def parameter_errors(action: Action, values: Any, *, allow_templates: bool = False) -> dict[str, list[str]]:
    """What is wrong with values given by a caller or a rule (app/engine/caller_parameters.py)."""
    return caller_errors(action, values, default_timeout=int(current_app.config["EXECUTION_DEFAULT_TIMEOUT"]),
                         allow_templates=allow_templates)


def check_parameters(action: Action, values: Any, *, allow_templates: bool = False) -> None:
    errors = parameter_errors(action, values, allow_templates=allow_templates)
    if errors:
        names = ", ".join(sorted(errors))
        raise ValidationError(f"Invalid parameters: {names}.",
                              {"parameters": without_secret_values(parameter_schema(action), values, errors)})


def without_secret_values(schema: dict[str, Any], values: Any, errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """``errors`` with a secret parameter's value masked: validation messages quote the value
    they refuse ("'hunter2' does not match ..."), and a 422 body must not show it either."""
    if not isinstance(values, dict):
        return errors
    masked = dict(errors)
    for name in secret_names(schema) & set(errors):
        if name not in values:
            continue
        value = values[name]
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
        # repr() is how jsonschema quotes a value; short plain texts only in their quoted form.
        forms = {repr(value), *(repr(item) for item in items), *secret_strings({name: value})}
        forms = sorted((form for form in forms if form != MASK), key=len, reverse=True)
        masked[name] = [mask_text(message, forms) for message in errors[name]]
    return masked


def create_execution(action: Action, values: dict[str, Any], *, user: str | None = None,
                     rule_ref: str | None = None, enforcement_id: int | None = None,
                     parent: Execution | None = None, rerun_of: int | None = None,
                     context: dict[str, Any] | None = None, task_name: str | None = None,
                     templates: bool = False, item_index: int | None = None, send: bool = True,
                     secret_values: list[str] = ()) -> Execution:
    """Validate ``values``, add the execution (``requested``) and store its secrets; flush only.
    On an error it has written nothing (a Vault failure takes its row back with it).

    The worker renders the templates among the parameters (defaults such as
    ``cmd: "echo {{ message }}"``, written by the pack's author). Values given here are data,
    kept literal: rules pass values they rendered already, and a value a caller types must
    not become a template that reads the pack's config or other secrets. With ``templates``
    (a rule's action parameters) the values are templates the worker renders. The message
    that runs it is sent after the commit (a message sent before could reach a worker before
    the row is visible; one for a rolled back row would run nothing). ``send=False``: the
    caller sends it (a workflow's children go out together, in a chord: ``send_children``).
    ``secret_values``: strings that are secret wherever they appear (values a workflow
    decrypted): a parameter holding one is kept in Vault and masked like a secret parameter.
    """
    if not action.enabled:
        raise Conflict(f"Action {action.ref!r} is disabled.")
    schema = parameter_schema(action)
    check_parameters(action, values, allow_templates=templates)
    merged = with_defaults(schema, values)
    if secret_values:
        holding = sorted(name for name, value in merged.items() if name not in secret_names(schema)
                         and value is not None and mask_value(value, list(secret_values)) != value)
        if holding:
            schema = _marked_secret(schema, holding)
            context = {**(context or {}), "secret_parameters": holding}
    secret = {name: merged[name] for name in secret_names(schema) if merged.get(name) is not None}
    literal = set(secret) | (set() if templates else set(values)) | set((context or {}).get("literal_parameters", []))
    context = {**(context or {}), "literal_parameters": sorted(literal)} if literal else (context or {})
    now = utcnow()
    row = dict(
        action_id=action.id, action_ref=action.ref, pack_name=action.pack_name,
        runner_type=action.runner_type, parameters=mask_secrets(merged, schema),
        status=REQUESTED, user=user, rule_ref=rule_ref, enforcement_id=enforcement_id,
        parent_id=parent.id if parent else None,
        root_id=(parent.root_id or parent.id) if parent else None,
        rerun_of=rerun_of, context=context, task_name=task_name, item_index=item_index,
        timeout=execution_timeout(action, merged, values), task_id=uuid.uuid4().hex,
        request_id=request_id_var.get(), created_at=now, scheduled_at=now,
    )
    stored = vault_secrets(merged, schema)  # the secret parameters and credential headers
    if stored:
        # Vault is the one step that can fail after the INSERT: a SAVEPOINT takes the row
        # back with it, so a caller that goes on (the rules engine records a failed
        # enforcement) keeps nothing of this execution. Everything before the INSERT fails
        # having written nothing, so an execution without secrets needs no savepoint.
        with unit_of_work.savepoint():
            execution = insert_execution(**row)
            store_secrets(execution.id, stored)
    else:
        execution = insert_execution(**row)
    if send:
        enqueue(execution)
    return execution


_insert = RowInserter(Execution)


def insert_execution(**values: Any) -> Execution:
    """Add one execution row now (one ``INSERT … RETURNING id`` in the session's transaction)
    and give back the session's persistent object for it, every column loaded.

    Creating executions is the hottest write there is; the ORM's flush of one new object
    (its unit of work) cost several times the statement itself (docs/performance.md).
    """
    return _insert(**values)


def store_secrets(execution_id: int, values: dict[str, Any]) -> None:
    """Vault first, then the commit; a rollback deletes what was written (the orphan sweep
    removes what a crash between the two left behind)."""
    path = vault.execution_secret_path(execution_id)
    vault.write_secret(path, values)
    unit_of_work.on_rollback(vault.delete_secret, path)


def has_stored_secrets(execution: Execution) -> bool:
    """Whether Vault holds values for it (a masked parameter or header); saves a Vault call otherwise."""
    parameters = execution.parameters or {}
    headers = parameters.get(HEADERS)
    return any(value == MASK for value in parameters.values()) or (isinstance(headers, dict) and MASK in headers.values())


def forget_secrets(execution: Execution) -> None:
    """Delete the execution's secret values once it has ended (they are not kept for reruns)."""
    if has_stored_secrets(execution):
        vault.delete_secret(vault.execution_secret_path(execution.id))


def flower_summary(execution: Execution) -> str:
    return f"execution={execution.id} action={execution.action_ref}"


def enqueue(execution: Execution, countdown: float | None = None) -> None:
    """Send run_execution(id) once the current transaction commits (never if it rolls back)."""
    unit_of_work.after_commit(
        send_run, execution.id, execution.task_id, flower_summary(execution), countdown, _time_limit(execution))


def send_run(execution_id: int, task_id: str | None, summary: str, countdown: float | None,
             time_limit: float) -> None:
    """The message itself; a broker failure is left to the sweeper (the row is committed)."""
    try:
        queue.send(queue.RUN_EXECUTION, [execution_id], summary=summary, task_id=task_id,
                   countdown=countdown, time_limit=time_limit)
    except Exception:  # noqa: BLE001 - the row is committed; the sweeper re-sends it
        log.warning("could not enqueue execution %s; the sweeper will retry", execution_id, exc_info=True)


def send_children(parent_id: int, together: list[Execution], alone: list[Execution],
                  delays: dict[int, float]) -> None:
    """Queue a workflow's new children once the transaction that created them commits.

    ``together`` (children that run plain actions, started in one step) go out as one Celery
    chord whose callback (``join_children``) wakes the parent once they have all ended: one
    resume for the whole fan-out instead of one per child. Such a child that does not
    succeed also wakes the parent itself, at once (a failure decides the workflow's path
    without waiting for its siblings); a callback that never comes (lost, or the chord broken
    by a result backend that expired) is made up by the sweeper, which wakes a waiting
    parent whose children have all ended. ``alone`` (children that may wait themselves — a
    nested workflow, an inquiry — or start after a delay) are sent one by one and wake the
    parent when they end.
    """
    for child in alone:
        enqueue(child, delays.get(child.id))
    if together:
        headers = [(child.id, child.task_id, flower_summary(child), _time_limit(child)) for child in together]
        unit_of_work.after_commit(_send_chord, parent_id, headers)


def _time_limit(execution: Execution) -> float:
    return (execution.timeout or current_app.config["EXECUTION_DEFAULT_TIMEOUT"]) + TIME_LIMIT_GRACE_SECONDS


def _send_chord(parent_id: int, headers: list[tuple[int, str, str, float]]) -> None:
    try:
        queue.send_chord(queue.RUN_EXECUTION, headers, queue.JOIN_CHILDREN, parent_id,
                         summary=f"join children of execution={parent_id}")
    except Exception:  # noqa: BLE001 - the rows are committed; the sweeper re-sends them
        log.warning("could not enqueue the children of execution %s; the sweeper will retry", parent_id,
                    exc_info=True)


def send_resume(execution_id: int) -> None:
    """Ask a worker to resume a woken execution; a lost message is re-sent by the sweeper."""
    try:
        queue.send(queue.RESUME_EXECUTION, [execution_id], summary=f"resume execution={execution_id}")
    except Exception:  # noqa: BLE001 - the wake is committed; the sweeper resumes it
        log.warning("could not send the resume of execution %s; the sweeper will", execution_id, exc_info=True)


def wake(execution_ids: list[int]) -> None:
    """Count a wake for each (flush only); those waiting get a resume message after the commit."""
    for execution_id in transitions.wake(execution_ids):
        unit_of_work.after_commit(send_resume, execution_id)


def wake_for_join(execution_id: int) -> bool:
    """Count a wake for a parent whose chord of children has ended, and commit it; True if it
    waits (the caller resumes it at once), False if a worker has it now (its wait will be
    refused and it goes round) or it has ended."""
    waiting = transitions.wake([execution_id])
    db.session.commit()
    return bool(waiting)


def ended(execution_ids: list[int], *, secrets: bool = True, logs: bool = True,
          parents: list[int] | None = None, listened: bool = True, redis_keys: bool = True) -> None:
    """In the transaction that ended these executions: wake their waiting parents, and after
    the commit move their log lines from Redis to PostgreSQL (unless the caller did, in the
    same transaction: ``logs=False``), drop them and the cancel flag from Redis, forget their
    secrets, fire ``core.execution_finished``. ``parents``: their parents' ids, when the
    caller knows them (saves a query); ``listened=False``: the caller knows no rule listens
    for ``core.execution_finished`` (saves another); ``redis_keys=False``: the caller knows
    it left nothing in Redis — no line written, no cancel asked (saves a round trip)."""
    wake(transitions.parents_of(execution_ids) if parents is None else parents)
    for execution_id in execution_ids:
        unit_of_work.after_commit(_announce_end, execution_id, secrets, logs, listened, redis_keys)


def _announce_end(execution_id: int, secrets: bool, logs: bool, listened: bool, redis_keys: bool = True) -> None:
    client = redis_client()
    if logs:
        # A waiting or queued execution ended by a cancel: what it wrote before waiting is
        # still in Redis.
        truncated = execution_logs.persist_lines(client, execution_id)
        if truncated:
            db.session.execute(update(Execution).where(Execution.id == execution_id).values(log_truncated=True))
        db.session.commit()
    # The lines are in PostgreSQL now (persisted by the caller, or just above).
    if redis_keys:
        execution_logs.drop_redis_lines(client, execution_id, cancel_key(execution_id))
    if secrets:
        try:
            vault.delete_secret(vault.execution_secret_path(execution_id))
        except vault.VaultUnavailable:
            # The end is still announced; the orphan sweep deletes them once Vault is back.
            log.warning("execution %s: Vault is not available, its secrets stay until the orphan sweep",
                        execution_id)
    if not listened:
        return
    try:
        execution_events.fire_execution_finished(execution_id)
    except Exception:  # noqa: BLE001 - the execution has ended whatever becomes of its event
        db.session.rollback()
        log.exception("execution %s: its core.execution_finished event could not be recorded", execution_id)


def cancel_execution(execution: Execution) -> Execution:
    """Cancel ``execution`` and every descendant (flush only); 409 if it has already ended.

    Queued or waiting on a person → ``canceled`` at once; run by a worker → ``canceling``,
    its process tree killed, then ``canceled``; waiting on children → ``canceled`` once they
    have all ended (app/services/execution_transitions.py). The workers are told after the
    commit: a Redis flag the runner polls, and a Celery revoke to every worker.
    """
    outcome = transitions.cancel_tree(execution.id)
    db.session.refresh(execution)
    if execution.id not in outcome.ended and execution.status not in (CANCELING,):
        raise Conflict(f"Execution {execution.id} has already ended ({execution.status}).",
                       {"status": [execution.status]})
    _announce_cancel(outcome)
    return execution


def cancel_after_wait(execution_id: int) -> bool:
    """A cancel arrived while the runner worked and it has just begun to wait (flush only):
    the children it started and the inquiry it opened, unseen by that cancel, are canceled
    now, and the execution ends (True) if nothing of its tree is left running."""
    outcome = transitions.cancel_tree(execution_id)
    _announce_cancel(outcome)
    return execution_id in outcome.ended


def _announce_cancel(outcome: transitions.Canceled) -> None:
    for execution_id, task_id in outcome.signal:
        unit_of_work.after_commit(_signal_running, execution_id, task_id)
    for task_id in outcome.revoke:
        unit_of_work.after_commit(_revoke, task_id, False)
    ended(outcome.ended)


def _signal_running(execution_id: int, task_id: str | None) -> None:
    redis_client().set(cancel_key(execution_id), "1", ex=7 * 24 * 3600)
    if task_id:
        _revoke(task_id, True)


def _revoke(task_id: str, terminate: bool) -> None:
    try:
        queue.revoke(task_id, terminate=terminate, signal=TERMINATE_SIGNAL if terminate else None)
    except Exception:  # noqa: BLE001 - the database state alone already stops it
        log.warning("revoke of task %s failed", task_id, exc_info=True)


def retry_policy(action: Action | None) -> dict[str, Any]:
    retry = (action.retry if action else None) or {}
    return {"retries": int(retry.get("retries", 0)), "delay": float(retry.get("delay", 0)),
            "on": list(retry.get("on", ["failed"]))}


def may_retry(execution: Execution, policy: dict[str, Any]) -> bool:
    """Whether some end of ``execution`` could give it another attempt under ``policy``."""
    if (execution.context or {}).get("in_workflow"):
        return False  # a workflow task's own `retry` governs it (app/engine/workflows)
    return bool(execution.action_id) and execution.attempt <= policy["retries"]


def create_retry(execution: Execution, status: str, policy: dict[str, Any] | None = None) -> Execution | None:
    """A new attempt row if the action's retry policy covers ``status`` (flush only; it is
    queued, after its delay, once the transaction commits).

    The retry is a new execution (attempt + 1, ``rerun_of`` the failed one, context
    ``retry_of``) so each attempt keeps its own logs, timings and result. ``policy`` saves
    loading the action when the caller has it.
    """
    if policy is None:
        action = db.session.get(Action, execution.action_id) if execution.action_id else None
        policy = retry_policy(action)
    if status not in policy["on"] or not may_retry(execution, policy):
        return None
    now = utcnow()
    delay = policy["delay"]
    retry = Execution(
        action_id=execution.action_id, action_ref=execution.action_ref, pack_name=execution.pack_name,
        runner_type=execution.runner_type, parameters=dict(requested_parameters(execution)),
        status=SCHEDULED if delay else REQUESTED, user=execution.user, rule_ref=execution.rule_ref,
        enforcement_id=execution.enforcement_id, parent_id=execution.parent_id,
        root_id=execution.root_id, task_name=execution.task_name,
        context={**(execution.context or {}), "retry_of": execution.id},
        timeout=execution.timeout, attempt=execution.attempt + 1, rerun_of=execution.id,
        task_id=uuid.uuid4().hex, request_id=execution.request_id,
        created_at=now, scheduled_at=now + timedelta(seconds=delay),
    )
    try:
        # The attempt needs the secret values copied; with Vault down it is not made at all
        # (the execution still ends, its error naming Vault, rather than stay running).
        with db.session.begin_nested():
            db.session.add(retry)
            db.session.flush()
            secrets = vault.read_secret(vault.execution_secret_path(execution.id)) \
                if has_stored_secrets(execution) else None
            if secrets:
                store_secrets(retry.id, secrets)
    except vault.VaultUnavailable:
        log.warning("execution %s: no retry, Vault is not available to copy its secret values", execution.id)
        return None
    enqueue(retry, countdown=delay or None)
    return retry


def rerun_values(original: Execution, action: Action, overrides: dict[str, Any]) -> dict[str, Any]:
    """The original's parameters with ``overrides``; masked secrets must be given again.

    Only the values that were given (``literal_parameters``) are repeated; defaults are
    rendered afresh. A value showing ``********`` (a secret, or text a secret was rendered
    into) is dropped: its default, if any, applies; otherwise it must be given again.
    """
    schema = parameter_schema(action)
    given = set((original.context or {}).get("literal_parameters", []))
    values = {
        name: value for name, value in requested_parameters(original).items()
        if name in given and MASK not in json.dumps(value) and not schema.get(name, {}).get("immutable")
    }
    values.update(overrides)
    errors = parameter_errors(action, values)
    for name in errors:
        if name not in values and MASK in json.dumps(original.parameters.get(name)):
            errors[name] = ["Secret values are not kept after an execution ends; give this parameter again."]
    if errors:
        raise ValidationError(f"Invalid parameters: {', '.join(sorted(errors))}.",
                              {"parameters": without_secret_values(schema, values, errors)})
    return values


def rerun_execution(original: Execution, overrides: dict[str, Any], user: str | None) -> Execution:
    action = db.session.get(Action, original.action_id) if original.action_id else None
    if action is None:
        raise Conflict(f"Action {original.action_ref!r} no longer exists; it cannot be rerun.")
    values = rerun_values(original, action, overrides)
    # Every given value stays literal, as in the original (a payload holding "{{ ... }}" must
    # not become a template because someone reran it); defaults are rendered afresh.
    return create_execution(action, values, user=user, rerun_of=original.id, parent=None,
                            context={"rerun_of": original.id})


def action_for_execute(ref: str) -> ActionFacts:
    """What creating an execution of ``ref`` needs, from this process's cache while no action
    or pack has changed (app/services/action_cache.py); 404 if there is no such action."""
    return action_cache.action_by_ref(ref)
