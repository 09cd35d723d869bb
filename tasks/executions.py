"""run_execution: claim an execution, run its action through its runner, record the end.

The message carries the execution id only. Parameters come from the row, secret values from
Vault. While the runner works, a heartbeat thread stamps ``heartbeat_at`` every
HEARTBEAT_SECONDS (the sweeper abandons executions whose stamp goes stale) and notices a
cancel recorded in PostgreSQL; the runner polls ``is_canceled`` (a Redis flag, plus what the
heartbeat saw; the revoke signal makes it look at once) and kills its process tree.

The Celery task ends as the execution did, so Flower tells the truth: ``succeeded`` is
SUCCESS, ``failed``/``timeout``/``abandoned`` raise ``ExecutionFailed`` (FAILURE, never
retried, the message acknowledged), ``canceled`` is REVOKED. Each is set only after the end
is committed.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from celery import shared_task
from celery.exceptions import Ignore
from flask import current_app
from sqlalchemy import select, update

from app.db import db
from app.engine.parameters import (
    SECRET_HEADERS,
    credential_headers,
    mask_secrets,
    restore_secrets,
    secret_config_keys,
    secret_names,
    value_errors,
)
from app.engine.templates import TemplateError, render_parameters, shell_parameters
from app.extensions import redis_client
from app.logging import execution_id_var, request_id_var
from app.models import Action, Execution, Pack
from app.models.execution import ABANDONED, CANCELED, TIMEOUT
from app.services import execution_events, execution_logs, executions, queue, vault
from app.services import execution_lifecycle as lifecycle
from app.services.masking import add_secret_strings, mask_text, mask_value, secret_strings
from app.services.pack_reader import pack_directory
from tasks import execution_watch
from tasks.execution_watch import CancelWatch, Heartbeat
from tasks.runners.base import FAILED, RunContext, RunResult
from tasks.runners.isolation import Isolation
from tasks.runners.registry import get_runner

log = logging.getLogger("patchbay.executions")

FAILURE_STATUSES = frozenset({FAILED, TIMEOUT, ABANDONED})
REASON_MAX = 300  # characters of the error shown in Flower


class ExecutionFailed(Exception):
    """The execution ended failed, timeout or abandoned (already recorded and committed)."""


# ``throws``: an expected end, logged without a traceback; Celery retries nothing here, and a
# failure is acknowledged (reject_on_worker_lost requeues only when the worker itself died).
@shared_task(name=queue.RUN_EXECUTION, bind=True, acks_late=True, reject_on_worker_lost=True,
             throws=(ExecutionFailed,))
def run_execution(self, execution_id: int) -> dict[str, Any]:
    execution_id_var.set(execution_id)
    try:
        execution = lifecycle.claim(execution_id, self.request.hostname or "unknown", self.request.id)
        db.session.commit()
    finally:
        request_id_var.set(None)
    if execution is None:
        status = db.session.scalar(select(Execution.status).where(Execution.id == execution_id))
        log.info("execution %s not claimed (status %s): duplicate or canceled message", execution_id, status)
        return {"execution": execution_id, "claimed": False, "status": status}
    request_id_var.set(execution.request_id)
    try:
        ended = _run_claimed(execution)
    finally:
        request_id_var.set(None)
        execution_id_var.set(None)
    return _end_task_as(self, execution, ended)


def _end_task_as(task: Any, execution: Execution, ended: dict[str, Any]) -> dict[str, Any]:
    """Give the Celery task the execution's outcome as its state (Flower shows it)."""
    error = ended.pop("error", None)
    status = ended["status"]
    if status == "already ended":
        # Ended meanwhile by someone else (the sweeper abandoned it, a cancel): mirror that end.
        row = db.session.execute(select(Execution.status, Execution.error).where(Execution.id == execution.id)).one()
        db.session.rollback()
        status, error = row.status, row.error
    if status in FAILURE_STATUSES:
        reason = error.splitlines()[0][:REASON_MAX] if error else "no reason recorded"
        raise ExecutionFailed(f"execution {execution.id} ({execution.action_ref}) {status}: {reason}")
    if status == CANCELED:
        # The worker announces REVOKED when the revoke reaches it while the task runs; a cancel
        # noticed through the Redis flag alone is announced here. Ignore: no SUCCESS after it.
        task.backend.mark_as_revoked(task.request.id, "canceled", request=task.request)
        task.send_event("task-revoked", terminated=False, signum=None, expired=False)
        raise Ignore()
    return ended


def _run_claimed(execution: Execution) -> dict[str, Any]:
    config = current_app.config
    client = redis_client()
    watch = CancelWatch(execution.id)
    secrets: dict[str, Any] = {}
    hidden: list[str] = []
    policy = lifecycle.retry_policy(None)
    writer = execution_logs.LogWriter(client, execution.id, config["EXECUTION_LOG_MAX_BYTES"], [])
    heart = Heartbeat(execution.id, config["HEARTBEAT_SECONDS"], watch)
    heart.start()
    execution_watch.current = watch
    try:
        found = db.session.execute(
            select(Action, Pack).join(Pack, Pack.id == Action.pack_id).where(Action.id == execution.action_id)
        ).first() if execution.action_id else None
        db.session.commit()  # makes ``running`` visible; holds no transaction while it runs
        if found is None:
            outcome = RunResult(FAILED, {}, f"Action {execution.action_ref!r} no longer exists.")
        else:
            action, pack = found
            policy = lifecycle.retry_policy(action)
            schema = executions.parameter_schema(action)
            secrets = _secret_values(execution, schema)
            hidden = secret_strings({**secrets, **_config_secrets(pack)})
            writer.secrets = hidden
            outcome = _run_runner(execution, action, pack, schema, secrets, hidden, writer.emit, watch)
    except Exception as exc:  # noqa: BLE001 - any failure ends the execution as failed, not stuck
        log.exception("execution %s failed in the worker", execution.id)
        outcome = RunResult(FAILED, {}, f"Internal error: {exc.__class__.__name__}: {exc}")
    finally:
        execution_watch.current = None
        heart.done.set()
    if db.session().in_transaction():
        db.session.rollback()  # an error path left it open; the end is its own transaction
    heart.join(timeout=5)
    return _record_end(execution, outcome, writer, hidden, policy)


def _secret_values(execution: Execution, schema: dict[str, Any]) -> dict[str, Any]:
    if not executions.has_stored_secrets(execution):
        return {}
    stored = vault.read_secret(vault.execution_secret_path(execution.id)) or {}
    return {name: stored[name] for name in (*secret_names(schema), SECRET_HEADERS) if name in stored}


def _config_secrets(pack: Pack) -> dict[str, Any]:
    """The pack config's values declared secret: templates may render them into parameters
    (``"{{ config.api_key }}"``), so they are masked like secret parameters wherever shown."""
    config = pack.config or {}
    return {key: config[key] for key in secret_config_keys(pack.config_schema) if config.get(key) is not None}


def _run_runner(execution: Execution, action: Action, pack: Pack, schema: dict[str, Any],
                secrets: dict[str, Any], hidden: list[str], emit, watch: CancelWatch) -> RunResult:
    config = dict(pack.config or {})
    try:
        parameters = _render(execution, schema, secrets, hidden, config)
    except (TemplateError, ValueError) as exc:
        return RunResult(FAILED, {}, str(exc))
    ctx = RunContext(
        execution_id=execution.id, action_ref=execution.action_ref, pack=execution.pack_name,
        runner_type=execution.runner_type, entry_point=action.entry_point or "",
        pack_path=_pack_dir(pack), parameters=parameters, parameter_schema=schema,
        timeout=float(execution.timeout or current_app.config["EXECUTION_DEFAULT_TIMEOUT"]),
        emit=emit, is_canceled=watch, config=config, isolation=_isolation(),
    )
    return get_runner(execution.runner_type).run(ctx)


@functools.cache
def _isolation() -> Isolation:
    return Isolation.from_config(current_app.config)


def _pack_dir(pack: Pack) -> str | None:
    """Pack.path is relative to PACKS_PATH; resolve it against this worker's PACKS_PATH."""
    directory = pack_directory(pack.path)
    return str(directory) if directory is not None else None


def _render(execution: Execution, schema: dict[str, Any], secrets: dict[str, Any], hidden: list[str],
            config: dict[str, Any]) -> dict[str, Any]:
    """Render the parameters' templates, check the result, and show it (masked) on the row."""
    values = restore_secrets(execution.parameters, secrets)
    context = {
        "config": config,
        "trigger": (execution.context or {}).get("trigger", {}),
        # A rule's templates also see the rule and the event that fired it.
        "rule": (execution.context or {}).get("rule", {}),
        "event": (execution.context or {}).get("event", {}),
        "execution": {"id": execution.id, "action": execution.action_ref, "pack": execution.pack_name,
                      "user": execution.user, "rule": execution.rule_ref, "attempt": execution.attempt},
    }
    rendered = render_parameters(schema, values, context,
                                 shell_quote=shell_parameters(execution.runner_type),
                                 # Secret values are data, never templates (a password may contain "{{").
                                 literal=[*(execution.context or {}).get("literal_parameters", []), *secrets])
    # A credential header rendered from a template ("Bearer {{ config.token }}") is a secret too.
    add_secret_strings(hidden, credential_headers(rendered, schema))
    # Immutable values were checked at creation; after rendering they differ from their template.
    problems = value_errors({name: {k: v for k, v in d.items() if k != "immutable"} for name, d in schema.items()},
                            rendered)
    if problems:
        name = sorted(problems)[0]
        raise ValueError(f"Parameter {name!r} after rendering: {problems[name][0]}")
    shown = mask_value(mask_secrets(rendered, schema), hidden)
    if shown != execution.parameters:
        # The row shows what ran; the values as requested (templates, masked secrets) stay in
        # the context, for a retry or a rerun to render afresh: the shown ones hold "********"
        # where a secret was, which would run as that text (and as a glob, in a shell).
        own = execution.context or {}
        context = own if "requested_parameters" in own else {**own, "requested_parameters": execution.parameters}
        db.session.execute(update(Execution).where(Execution.id == execution.id)
                           .values(parameters=shown, context=context))
        db.session.commit()
    return rendered


def _fire_finished(execution_id: int) -> None:
    try:
        execution_events.fire_execution_finished(execution_id)
    except Exception:  # noqa: BLE001 - the execution has ended whatever becomes of its event
        db.session.rollback()
        log.exception("execution %s: its core.execution_finished event could not be recorded", execution_id)


def _record_end(execution: Execution, outcome: RunResult, writer: execution_logs.LogWriter,
                hidden: list[str], policy: dict[str, Any]) -> dict[str, Any]:
    client = writer.client
    result = mask_value(outcome.result or {}, hidden)
    error = mask_text(outcome.error, hidden) if outcome.error else None
    truncated = execution_logs.persist_lines(client, execution.id, writer.unsent) or writer.truncated
    ended = lifecycle.finish(execution.id, outcome.status, result, error, truncated)
    retry = lifecycle.create_retry(execution, ended, policy) if ended else None
    db.session.commit()
    execution_logs.drop_redis_lines(client, execution.id, executions.cancel_key(execution.id))
    if retry is not None:
        delay = (retry.scheduled_at - retry.created_at).total_seconds()
        executions.enqueue(retry, countdown=delay or None)
    if ended:
        executions.forget_secrets(execution)
        log.info("execution %s ended %s", execution.id, ended)
        _fire_finished(execution.id)
    else:
        log.info("execution %s had already ended; the runner's outcome (%s) is dropped", execution.id, outcome.status)
    return {"execution": execution.id, "claimed": True, "status": ended or "already ended",
            "error": error if ended else None}
