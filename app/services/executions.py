"""Executions: create (manual, rule, rerun, retry), enqueue, cancel, look up.

A new execution row stores its parameters with secret values replaced by ``********``; the
real values go to Vault at ``<VAULT_PREFIX>/executions/<id>`` before the row is committed, and
the worker reads them from there. The broker message carries the execution id only.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
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
from app.models.execution import CANCELED, CANCELING, PENDING, QUEUED, REQUESTED, RUNNING, TERMINAL
from app.services import execution_events, queue, vault
from app.services.content import get_by_ref
from app.services.execution_lifecycle import requested_parameters
from app.services.masking import mask_text, secret_strings
from app.services.rows import row_by_id

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


def parameter_schema(action: Action) -> dict[str, Any]:
    return effective_parameters(action.runner_type, action.parameters)


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
                     templates: bool = False) -> Execution:
    """Validate ``values``, add the execution (``requested``) and store its secrets; flush only.

    The worker renders the templates among the parameters (defaults such as
    ``cmd: "echo {{ message }}"``, written by the pack's author). Values given here are data,
    kept literal: rules pass values they rendered already, and a value a caller types must
    not become a template that reads the pack's config or other secrets. With ``templates``
    (a rule's action parameters) the values are templates the worker renders. Commit, then
    call ``enqueue(execution)``: a message sent before the commit could reach a worker before
    the row is visible.
    """
    if not action.enabled:
        raise Conflict(f"Action {action.ref!r} is disabled.")
    schema = parameter_schema(action)
    check_parameters(action, values, allow_templates=templates)
    merged = with_defaults(schema, values)
    secret = {name: merged[name] for name in secret_names(schema) if merged.get(name) is not None}
    literal = set(secret) | (set() if templates else set(values)) | set((context or {}).get("literal_parameters", []))
    context = {**(context or {}), "literal_parameters": sorted(literal)} if literal else (context or {})
    execution = Execution(
        action_id=action.id, action_ref=action.ref, pack_name=action.pack_name,
        runner_type=action.runner_type, parameters=mask_secrets(merged, schema),
        status=REQUESTED, user=user, rule_ref=rule_ref, enforcement_id=enforcement_id,
        parent_id=parent.id if parent else None,
        root_id=(parent.root_id or parent.id) if parent else None,
        rerun_of=rerun_of, context=context, task_name=task_name,
        timeout=execution_timeout(action, merged, values), task_id=uuid.uuid4().hex,
        request_id=request_id_var.get(), created_at=utcnow(), scheduled_at=utcnow(),
    )
    db.session.add(execution)
    db.session.flush()
    stored = vault_secrets(merged, schema)  # the secret parameters and credential headers
    if stored:
        vault.write_secret(vault.execution_secret_path(execution.id), stored)
    return execution


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
    """Send run_execution(id) after the commit; a broker failure is left to the sweeper."""
    try:
        queue.send(
            queue.RUN_EXECUTION, [execution.id], summary=flower_summary(execution),
            task_id=execution.task_id, countdown=countdown,
            time_limit=(execution.timeout or current_app.config["EXECUTION_DEFAULT_TIMEOUT"])
            + TIME_LIMIT_GRACE_SECONDS,
        )
    except Exception:  # noqa: BLE001 - the row is committed; the sweeper re-sends it
        log.warning("could not enqueue execution %s; the sweeper will retry", execution.id, exc_info=True)


def cancel_execution(execution: Execution) -> bool:
    """Ask to stop ``execution`` (flush only); return True if it was running.

    Queued (or waiting on an inquiry) → ``canceled`` at once; running → ``canceling``; already
    canceling → unchanged. 409 if it has ended. Call ``signal_cancel`` after the commit.
    """
    now = utcnow()
    ended = db.session.execute(
        update(Execution)
        .where(Execution.id == execution.id, Execution.status.in_(sorted(QUEUED | {PENDING})))
        .values(status=CANCELED, finished_at=now)
        .returning(Execution.id)
    ).first()
    was_running = False
    if ended is None:
        was_running = db.session.execute(
            update(Execution)
            .where(Execution.id == execution.id, Execution.status == RUNNING)
            .values(status=CANCELING)
            .returning(Execution.id)
        ).first() is not None
    db.session.refresh(execution)
    if execution.status in TERMINAL and not ended:
        raise Conflict(f"Execution {execution.id} has already ended ({execution.status}).",
                       {"status": [execution.status]})
    return was_running or execution.status == CANCELING


def signal_cancel(execution: Execution, running: bool) -> None:
    """Tell the workers: a Redis flag the runner polls, and a Celery revoke to every worker.

    An execution canceled while queued ends here, not in a worker: its
    ``core.execution_finished`` is fired here too.
    """
    if running:
        redis_client().set(cancel_key(execution.id), "1", ex=7 * 24 * 3600)
    if execution.task_id:
        try:
            queue.revoke(execution.task_id, terminate=running, signal=TERMINATE_SIGNAL if running else None)
        except Exception:  # noqa: BLE001 - the database state alone already stops it
            log.warning("revoke of execution %s failed", execution.id, exc_info=True)
    if not running:
        forget_secrets(execution)
        try:
            execution_events.fire_execution_finished(execution.id)
        except Exception:  # noqa: BLE001 - the cancel is committed whatever becomes of its event
            db.session.rollback()
            log.exception("execution %s: its core.execution_finished event could not be recorded", execution.id)


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


def action_for_execute(ref: str) -> Action:
    return get_by_ref(Action, ref, "Action")
