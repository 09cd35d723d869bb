"""The execution container: an execution's whole life in a worker, in one place.

``start`` takes a queued execution, ``resume`` a woken waiting one; both go through the same
three steps, like StackStorm's RunnerContainer:

1. **prepare** — claim it (a guarded transition: a duplicate message, a canceled row or
   another worker's claim wins nothing), load its action and pack, read its secrets from
   Vault (a secret that is missing fails the execution with a clear error: it never runs
   with ``********`` as the value), render and check its parameters;
2. **run** — hand a ``RunContext`` to its runner (tasks/runners), while this pool process's
   heartbeat thread stamps it and a cancel reaches the runner through ``CancelWatch``;
3. **record** — mask what the runner returned, then in one transaction either *end* it
   (result, error, logs, status; a retry attempt if its policy says so; its waiting parent
   woken) or make it *wait* (its state kept, the worker slot released). After the commit,
   what the change asks for goes out (app/services/unit_of_work.py): the retry's and the
   children's messages, the parent's resume, ``core.execution_finished``.

A runner that waits answers ``RunResult.wait(on, state)``: on ``children`` (it stays
``running`` with ``waiting_on=children``) or on a person (``pending``). Whoever ends the wait
counts a wake in ``wakeups`` in the same transaction, then sends ``resume_execution``; the
wait itself is refused if a wake arrived while the runner worked, and the container goes
round again at once, so no wake is lost. Every status change is in
app/services/execution_transitions.py.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from app.db import db, utcnow
from app.engine.parameters import (
    MASK,
    SECRET_HEADERS,
    credential_headers,
    mask_secrets,
    restore_secrets,
    secret_names,
    value_errors,
)
from app.engine.runner_types import WORKFLOW_RUNNERS
from app.engine.templates import TemplateError, render_parameters, shell_parameters
from app.errors import APIError
from app.extensions import redis_client
from app.logging import request_id_var
from app.models import Action, Execution, Pack
from app.models.execution import (
    ABANDONED,
    CANCELED,
    CANCELING,
    FAILED,
    LOG_POSITION,
    PAUSED,
    PAUSING,
    RUNNER_STATE,
    SCHEDULED,
    SUCCEEDED,
    TERMINAL,
    TIMEOUT,
    WAITING_ON_CHILDREN,
)
from app.services import (
    execution_logs,
    executions,
    inquiries,
    pack_config,
    run_tokens,
    unit_of_work,
    vault,
)
from app.services import execution_transitions as transitions
from app.services.execution_transitions import requested_parameters
from app.services.key_templates import Datastore
from app.services.masking import add_secret_strings, mask_text, mask_value, secret_strings
from app.services.pack_reader import pack_directory
from tasks import execution_watch
from tasks.execution_watch import CancelWatch, Heartbeat
from tasks.runners.base import WAITING, WAITING_RUNNERS, ChildState, RunContext, RunResult
from tasks.runners.isolation import Isolation
from tasks.runners.registry import get_runner

log = logging.getLogger("patchbay.executions")

FAILURE_STATUSES = frozenset({FAILED, TIMEOUT, ABANDONED})
MAX_ROUNDS = 1000  # wakes handled in one go before the container lets the message end


class MissingSecret(Exception):
    """A secret value the execution needs is not in Vault."""


@dataclass
class Outcome:
    """What became of the execution in this worker: its status (``waiting`` while it waits),
    whether this container claimed it, and the error shown in Flower."""

    execution_id: int
    claimed: bool
    status: str | None
    error: str | None = None
    action_ref: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"execution": self.execution_id, "claimed": self.claimed, "status": self.status}


class ExecutionContainer:
    """Runs one execution for a Celery task (tasks/executions.py): ``start()`` or ``resume()``."""

    def __init__(self, execution_id: int, worker_host: str, task_id: str | None = None) -> None:
        self.execution_id = execution_id
        self.worker_host = worker_host or "unknown"
        self.task_id = task_id

    # --- the two ways in -------------------------------------------------------------------

    def start(self) -> Outcome:
        # The claim comes with the action and pack, and is committed as it returns.
        claimed = transitions.claim(self.execution_id, self.worker_host, self.task_id)
        if claimed is None:
            return self._not_claimed()
        execution, action, pack = claimed
        db.session.commit()
        return self._drive(execution, (action, pack) if action is not None else None, resuming=False)

    def resume(self) -> Outcome:
        execution = transitions.claim_resume(self.execution_id, self.worker_host)
        if execution is None:
            return self._not_claimed()
        # The action and pack in the claim's transaction: one commit makes the claim visible.
        found = db.session.execute(
            select(Action, Pack).join(Pack, Pack.id == Action.pack_id).where(Action.id == execution.action_id)
        ).first() if execution.action_id else None
        db.session.commit()
        return self._drive(execution, found, resuming=True)

    def _not_claimed(self) -> Outcome:
        db.session.rollback()
        status = db.session.scalar(select(Execution.status).where(Execution.id == self.execution_id))
        db.session.rollback()
        return Outcome(self.execution_id, False, status)

    # --- prepare, run, record ----------------------------------------------------------------

    def _drive(self, execution: Execution, found: tuple[Action, Pack] | None, *, resuming: bool) -> Outcome:
        request_id_var.set(execution.request_id)
        seen = execution.wakeups
        position = None  # where the log stands after a round whose wait was refused
        for _ in range(MAX_ROUNDS):
            run = _Run(execution, found, resuming, position)
            outcome = run.execute()
            if outcome.status == WAITING:
                waited = self._wait(run, outcome, seen)
                if waited:
                    return Outcome(execution.id, True, waited, None, execution.action_ref)
                # Refused: a wake arrived while the runner worked (go round again at once), or
                # the execution is no longer ours (ended meanwhile: the runner's word is dropped).
                row = db.session.execute(select(Execution.status, Execution.waiting_on, Execution.wakeups)
                                         .where(Execution.id == execution.id)).one()
                db.session.rollback()
                if row.status in TERMINAL or row.waiting_on is not None:
                    return Outcome(execution.id, True, "already ended", None, execution.action_ref)
                seen, resuming, position = row.wakeups, True, run.writer.position()
                continue
            return self._end(run, outcome)
        # Woken MAX_ROUNDS times while working: leave it running; its next wake goes on.
        log.warning("execution %s woken %d times in a row; its next wake resumes it", execution.id, MAX_ROUNDS)
        return Outcome(execution.id, True, "running")

    def _wait(self, run: _Run, outcome: RunResult, seen: int) -> str | None:
        """Record the wait; ``waiting`` (or ``canceled``: a cancel that raced the runner ended
        it), or None if refused."""
        execution = run.execution
        # A decrypted secret the runner kept (a workflow's published value) is stored masked.
        context = {**run.context(), RUNNER_STATE: mask_value(outcome.state or {}, run.hidden),
                   LOG_POSITION: run.writer.position()}
        status = transitions.wait(execution.id, outcome.waiting_on or WAITING_ON_CHILDREN, seen, context)
        if status is None:
            db.session.rollback()  # the children and inquiries it opened go with the refused wait
            return None
        if status == CANCELING and executions.cancel_after_wait(execution.id):
            unit_of_work.commit()
            log.info("execution %s canceled", execution.id)
            return CANCELED
        if status == PAUSED and execution.parent_id:
            executions.wake([execution.parent_id])  # a pausing parent may now be paused too
        unit_of_work.commit()
        log.info("execution %s waits on %s", execution.id, outcome.waiting_on)
        return "waiting"

    def _end(self, run: _Run, outcome: RunResult) -> Outcome:
        execution, writer = run.execution, run.writer
        result = mask_value(outcome.result or {}, run.hidden)
        error = mask_text(outcome.error, run.hidden) if outcome.error else None
        # A run that wrote nothing (a noop) has nothing in Redis to move.
        logs = bool(writer.seq or writer.unsent)
        truncated = (execution_logs.persist_lines(writer.client, execution.id, writer.unsent) or writer.truncated
                     if logs else False)
        # The end is the one statement of its transaction when nothing else is written with it:
        # then it commits as it runs.
        alone = not (logs or outcome.state is not None or execution.parent_id
                     or executions.may_retry(execution, run.policy))
        if outcome.state is not None:
            # What a runner keeps past its end (a workflow's state, for a rerun from a task).
            db.session.execute(update(Execution).where(Execution.id == execution.id).values(
                context={**run.context(), RUNNER_STATE: mask_value(outcome.state, run.hidden)}))
        finished = transitions.finish(execution.id, outcome.status, result, error, truncated, alone=alone)
        if finished is None:
            db.session.rollback()
            log.info("execution %s had already ended; the runner's outcome (%s) is dropped",
                     execution.id, outcome.status)
            return Outcome(execution.id, True, "already ended", None, execution.action_ref)
        status, listened = finished
        executions.create_retry(execution, status, run.policy)
        # A child that succeeded in a chord leaves its parent's wake to the chord's callback.
        in_chord = status == SUCCEEDED and (execution.context or {}).get("chord")
        # A run that wrote nothing and was not canceled left no lines and no cancel flag in Redis.
        executions.ended([execution.id], secrets=run.had_secrets, logs=False, listened=listened,
                         parents=[execution.parent_id] if execution.parent_id and not in_chord else [],
                         redis_keys=logs or writer.truncated or status == CANCELED)
        unit_of_work.commit()
        log.info("execution %s ended %s", execution.id, status)
        return Outcome(execution.id, True, status, error, execution.action_ref)


class _Run:
    """One pass of the runner over an execution (its first run, or one resume)."""

    def __init__(self, execution: Execution, found: Any, resuming: bool,
                 position: dict[str, Any] | None = None) -> None:
        self.execution = execution
        self.found = found
        self.resuming = resuming
        self.hidden: list[str] = []
        self.had_secrets = executions.has_stored_secrets(execution)
        self.policy = executions.retry_policy(found[0] if found else None)
        config = current_app.config
        self.writer = execution_logs.LogWriter(redis_client(), execution.id, config["EXECUTION_LOG_MAX_BYTES"], [])
        # The lines of a round whose wait was refused are in Redis already: number on after them.
        self.writer.resume_at(position or (execution.context or {}).get(LOG_POSITION))
        self.children = _Children(execution, self.hidden)
        # The datastore (st2kv too), read as the execution's user; a secret read through
        # `| decrypt_kv` (or a workflow's st2kv(..., decrypt=true)) is masked like a secret parameter.
        self.kv = Datastore(execution.user, lambda value: add_secret_strings(self.hidden, {"kv": value}))

    def context(self) -> dict[str, Any]:
        return dict(self.execution.context or {})

    def execute(self) -> RunResult:
        execution = self.execution
        watch = CancelWatch(execution.id)
        heart = Heartbeat.of_this_process(current_app.config["HEARTBEAT_SECONDS"])
        heart.watch(execution.id, watch)
        execution_watch.current = watch
        try:
            if self.found is None:
                return RunResult(FAILED, {}, f"Action {execution.action_ref!r} no longer exists.")
            if execution.status == CANCELING and self.resuming:
                # Canceled while it waited: run nothing more; it ends once its children have.
                return self._settle(RunResult(CANCELED, {}, None))
            action, pack = self.found
            schema = executions.parameter_schema(action, execution)
            secrets = self._secrets(schema)
            config, config_secrets = pack_config.runtime(pack)
            self.hidden[:] = secret_strings({**secrets, **config_secrets})
            self.writer.secrets = self.hidden
            ctx = self._context(action, pack, config, schema, secrets, watch)
            runner = get_runner(execution.runner_type)
            outcome = runner.resume(ctx) if self.resuming else runner.run(ctx)
            self.children.send()
            return self._settle(outcome)
        except (TemplateError, ValueError, MissingSecret) as exc:  # VaultUnavailable below: an APIError
            return RunResult(FAILED, {}, str(exc))
        except APIError as exc:  # a child the runner asked for was refused (no such action, bad parameters)
            return RunResult(FAILED, {}, f"{exc.message} {exc.errors}" if exc.errors else exc.message)
        except Exception as exc:  # noqa: BLE001 - any failure ends the execution as failed, not stuck
            log.exception("execution %s failed in the worker", execution.id)
            return RunResult(FAILED, {}, f"Internal error: {exc.__class__.__name__}: {exc}")
        finally:
            execution_watch.current = None
            heart.release()

    def _settle(self, outcome: RunResult) -> RunResult:
        """A parent ends only when its children have: a canceled one waits for them."""
        if outcome.status == WAITING or not (self.children.started or self.resuming or outcome.status == CANCELED):
            return outcome
        canceling = outcome.status == CANCELED or db.session.scalar(
            select(Execution.status).where(Execution.id == self.execution.id)) == CANCELING
        if canceling and transitions.active_children(self.execution.id):
            return RunResult.wait(WAITING_ON_CHILDREN, (self.execution.context or {}).get(RUNNER_STATE))
        return outcome

    def _secrets(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The execution's secret values from Vault; MissingSecret if one it needs is gone."""
        if not self.had_secrets:
            return {}
        requested = requested_parameters(self.execution)
        needed = {name for name in secret_names(schema) if requested.get(name) == MASK}
        headers = requested.get("headers")
        if isinstance(headers, dict) and MASK in headers.values():
            needed.add(SECRET_HEADERS)
        stored = vault.read_secret(vault.execution_secret_path(self.execution.id)) or {}
        missing = sorted(needed - set(stored))
        if missing:
            names = ", ".join(repr(name) for name in missing)
            raise MissingSecret(
                f"The secret value of {names} is not in Vault (at {vault.execution_secret_path(self.execution.id)}"
                " under VAULT_PREFIX): it was deleted or never written, so the execution did not run. "
                "Run it again with the value.")
        return {name: stored[name] for name in (*secret_names(schema), SECRET_HEADERS) if name in stored}

    def _context(self, action: Action, pack: Pack, config: dict[str, Any], schema: dict[str, Any],
                 secrets: dict[str, Any], watch: CancelWatch) -> RunContext:
        execution = self.execution
        parameters = self._render(schema, secrets, config)
        timeout = float(execution.timeout or current_app.config["EXECUTION_DEFAULT_TIMEOUT"])
        api_token = run_tokens.mint_for_execution(execution, timeout)  # python actions' way to the keys API
        self.hidden.extend([api_token] if api_token else [])  # masked wherever it could show
        return RunContext(
            execution_id=execution.id, action_ref=execution.action_ref, pack=execution.pack_name,
            runner_type=execution.runner_type, entry_point=action.entry_point or "",
            pack_path=_pack_dir(pack), parameters=parameters, parameter_schema=schema,
            timeout=timeout, emit=self.writer.emit, is_canceled=watch, config=config, isolation=_isolation(),
            api_token=api_token,
            state=dict((execution.context or {}).get(RUNNER_STATE) or {}),
            children=self.children, people=_People(execution), canceling=execution.status == CANCELING,
            pausing=execution.status == PAUSING, kv=self.kv,
        )

    def _render(self, schema: dict[str, Any], secrets: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
        """Render the parameters' templates, check the result, and show it (masked) on the row."""
        execution = self.execution
        own = execution.context or {}
        requested = requested_parameters(execution)
        values = restore_secrets(requested, secrets)
        context = {
            "config": config,
            "trigger": own.get("trigger", {}),
            # A rule's templates also see the rule and the event that fired it.
            "rule": own.get("rule", {}),
            "event": own.get("event", {}),
            "execution": {"id": execution.id, "action": execution.action_ref, "pack": execution.pack_name,
                          "user": execution.user, "rule": execution.rule_ref, "attempt": execution.attempt},
            "kv": self.kv,
        }
        rendered = render_parameters(schema, values, context,
                                     shell_quote=shell_parameters(execution.runner_type),
                                     # Secret values are data, never templates (a password may contain "{{").
                                     literal=[*own.get("literal_parameters", []), *secrets])
        # A credential header rendered from a template ("Bearer {{ config.token }}") is a secret too.
        add_secret_strings(self.hidden, credential_headers(rendered, schema))
        # Immutable values were checked at creation; after rendering they differ from their template.
        problems = value_errors({name: {k: v for k, v in d.items() if k != "immutable"} for name, d in schema.items()},
                                rendered)
        if problems:
            name = sorted(problems)[0]
            raise ValueError(f"Parameter {name!r} after rendering: {problems[name][0]}")
        shown = mask_value(mask_secrets(rendered, schema), self.hidden)
        if shown != execution.parameters:
            # The row shows what ran; the values as requested (templates, masked secrets) stay in
            # the context, for a retry, a rerun or a resume to render afresh: the shown ones hold
            # "********" where a secret was, which would run as that text (and as a glob, in a shell).
            context_now = own if "requested_parameters" in own else {**own, "requested_parameters": requested}
            db.session.execute(update(Execution).where(Execution.id == execution.id)
                               .values(parameters=shown, context=context_now))
            db.session.commit()
            execution.parameters, execution.context = shown, context_now
        return rendered


class _Children:
    """``ctx.children``: child executions of the running one.

    Created in the transaction that records the parent's outcome: if that is refused or rolled
    back, the children never existed and no message was sent for them. What one step started
    goes out together after the commit (``executions.send_children``: a chord for plain actions).
    """

    def __init__(self, execution: Execution, hidden: list[str]) -> None:
        self.execution = execution
        self.hidden = hidden  # the parent's secret strings: a child given one keeps it secret
        self.started = 0
        self._actions: dict[str, Action] = {}
        self._together: list[Execution] = []
        self._alone: list[Execution] = []
        self._delays: dict[int, float] = {}

    def start(self, action_ref: str, parameters: dict[str, Any], task_name: str | None = None,
              item_index: int | None = None, delay: float | None = None) -> int:
        action = self._actions.get(action_ref)
        if action is None:
            action = self._actions[action_ref] = executions.action_for_execute(action_ref)
        context: dict[str, Any] = {"parent": self.execution.id, "task_name": task_name}
        if self.execution.runner_type in WORKFLOW_RUNNERS:
            context["in_workflow"] = True
        # A plain action's end is counted by the chord's callback; a child that may wait itself
        # (a workflow, an inquiry) or starts later is sent alone and wakes the parent itself.
        together = not delay and action.runner_type not in WAITING_RUNNERS
        if together:
            context["chord"] = True
        child = executions.create_execution(action, parameters, user=self.execution.user, parent=self.execution,
                                            task_name=task_name, item_index=item_index, context=context, send=False,
                                            secret_values=self.hidden)
        (self._together if together else self._alone).append(child)
        if delay:
            # Scheduled, so the sweeper does not take it for a lost message before it is due.
            child.status, child.scheduled_at = SCHEDULED, utcnow() + timedelta(seconds=float(delay))
            self._delays[child.id] = float(delay)
        self.started += 1
        return child.id

    def send(self) -> None:
        """Queue what this step started, once its transaction commits."""
        if self._together or self._alone:
            executions.send_children(self.execution.id, self._together, self._alone, self._delays)
        self._together, self._alone, self._delays = [], [], {}

    def states(self, ids: list[int] | None = None) -> list[ChildState]:
        query = (select(Execution.id, Execution.task_name, Execution.status, Execution.result, Execution.error)
                 .where(Execution.parent_id == self.execution.id).order_by(Execution.id))
        if ids is not None:
            query = query.where(Execution.id.in_(ids))
        return [ChildState(row.id, row.task_name, row.status, row.result, row.error, row.status in TERMINAL)
                for row in db.session.execute(query).all()]


class _People:
    """``ctx.people``: inquiries of the running execution."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution

    def ask(self, *, schema: dict[str, Any], route: str, users: list[str], roles: list[str],
            ttl_minutes: int | None) -> int:
        return inquiries.open_inquiry(self.execution, schema=schema, route=route, users=users, roles=roles,
                                      ttl_minutes=ttl_minutes).id

    def answer(self, inquiry_id: int) -> tuple[str, Any]:
        return inquiries.inquiry_state(inquiry_id)


@functools.cache
def _isolation() -> Isolation:
    return Isolation.from_config(current_app.config)


def _pack_dir(pack: Pack) -> str | None:
    """Pack.path is relative to PACKS_PATH; resolve it against this worker's PACKS_PATH."""
    directory = pack_directory(pack.path)
    return str(directory) if directory is not None else None

