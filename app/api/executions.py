"""Executions: list, read, children, cancel, pause/resume, rerun, logs (JSON or Server-Sent Events), stats."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from select import POLLIN, poll

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView
from sqlalchemy import select

from app.api.common import Blueprint, apply_sort, paginate
from app.db import db
from app.errors import APIError
from app.extensions import redis_client
from app.models import Execution
from app.models.execution import TERMINAL
from app.schemas.execution import (
    ChildrenArgs,
    ChildSchema,
    ExecutionListArgs,
    ExecutionSchema,
    ExecutionSummarySchema,
    LogArgs,
    LogLineSchema,
    RerunSchema,
    StatsArgs,
    StatsSchema,
)
from app.security import current_principal, requires
from app.security.decorators import ensure_pack_permission
from app.services import execution_queries as queries
from app.services import executions as service
from app.services import workflows
from app.services.execution_logs import StreamRefused, StreamSlot, read_lines, take_stream_slot

blp = Blueprint("executions", __name__, url_prefix="/api/v1/executions",
                description="Executions: runs of actions, their state, logs and results")

# Only columns that lead an index (alone or after an equality filter) are sortable.
SORTABLE = {"created_at": Execution.created_at, "id": Execution.id}
FOLLOW_POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15
FOLLOW_BATCH = 1000
# One follow answer lasts at most this long: gunicorn's sync workers abort a request still
# running after --timeout (60 s) and routers such as Heroku's cut long responses, either of
# which would end the stream mid-line. Ending it cleanly first, with a `retry` hint, lets
# EventSource reconnect with Last-Event-ID and go on.
FOLLOW_MAX_SECONDS = 50
FOLLOW_RETRY_MS = 500
def _visible_execution(execution_id: int, permission: str = "executions:view") -> Execution:
    execution = service.get_execution(execution_id)
    ensure_pack_permission(permission, execution.pack_name)
    return execution


@blp.route("")
class Executions(MethodView):
    @requires("executions:view", pack_from=None)
    @blp.arguments(ExecutionListArgs, location="query")
    @blp.response(200, ExecutionSummarySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List executions

        Filters: `status` (comma-separated), `action`, `pack`, `parent`, `root` (a whole tree,
        the root included), `rule`, `enforcement`,
        `user`, `since`, `until` (created_at); `sort` by created_at or id (default
        `-created_at`). The result is left out; read one execution for it.
        """
        query = queries.filtered(args, current_principal().packs_for("executions:view"))
        query = apply_sort(query, args.get("sort"), SORTABLE, "-created_at", Execution.id)
        return paginate(query, pagination_parameters)


@blp.route("/stats")
class ExecutionStats(MethodView):
    @requires("executions:view", pack_from=None)
    @blp.arguments(StatsArgs, location="query")
    @blp.response(200, StatsSchema)
    def get(self, args):
        """Count executions by status and by action

        Over `since`..`until` (created_at; default the last 24 hours), optionally one `pack`;
        `by_action` lists the `top` actions by volume.
        """
        return queries.stats(args.get("since"), args.get("until"), args.get("pack"),
                             current_principal().packs_for("executions:view"), args["top"])


@blp.route("/<int:execution_id>")
class ExecutionById(MethodView):
    @requires("executions:view", pack_from=None)
    @blp.response(200, ExecutionSchema)
    @blp.alt_response(404, description="No such execution")
    def get(self, execution_id):
        """Get an execution: parameters (secrets masked), status, result, timings, worker"""
        return _visible_execution(execution_id)


@blp.route("/<int:execution_id>/children")
class ExecutionChildren(MethodView):
    @requires("executions:view", pack_from=None)
    @blp.arguments(ChildrenArgs, location="query")
    @blp.response(200, ChildSchema(many=True))
    @blp.alt_response(404, description="No such execution")
    def get(self, args, execution_id):
        """List an execution's children (a workflow's tasks)

        Direct children by default; `depth=N` goes N levels down and `recursive=true` the whole
        tree, in tree order (a parent before its children), each with its `depth`, `task_name`
        and `item_index` (its item of a `with` items task). At most 10,000 rows.
        """
        _visible_execution(execution_id)
        depth = 100 if args["recursive"] else args.get("depth", 1)
        found = queries.children(execution_id, depth, current_principal().packs_for("executions:view"))
        for child, level in found:
            child.depth = level
        return [child for child, _ in found]


@blp.route("/<int:execution_id>/pause")
class ExecutionPause(MethodView):
    @requires("executions:cancel", pack_from=None)
    @blp.response(200, ExecutionSchema)
    @blp.alt_response(404, description="No such execution")
    @blp.alt_response(409, description="Not a running workflow")
    def post(self, execution_id):
        """Pause a workflow

        It becomes `pausing`: its running tasks finish, no new task starts; once none runs it
        is `paused`. Workflows nested in it pause with it. Needs `executions:cancel`.
        """
        execution = _visible_execution(execution_id, "executions:cancel")
        workflows.pause(execution)
        db.session.commit()
        return execution


@blp.route("/<int:execution_id>/resume")
class ExecutionResume(MethodView):
    @requires("executions:cancel", pack_from=None)
    @blp.response(200, ExecutionSchema)
    @blp.alt_response(404, description="No such execution")
    @blp.alt_response(409, description="Not a pausing or paused workflow")
    def post(self, execution_id):
        """Resume a paused workflow

        It is `running` again (its nested workflows too) and starts the tasks that were due.
        """
        execution = _visible_execution(execution_id, "executions:cancel")
        workflows.resume(execution)
        db.session.commit()
        return execution


@blp.route("/<int:execution_id>/cancel")
class ExecutionCancel(MethodView):
    @requires("executions:cancel", pack_from=None)
    @blp.response(200, ExecutionSchema)
    @blp.alt_response(404, description="No such execution")
    @blp.alt_response(409, description="The execution has already ended")
    def post(self, execution_id):
        """Cancel an execution and all its descendants

        A queued execution (or one waiting on a person) is `canceled` at once and never
        starts; a running one becomes `canceling`, its process tree is killed, then
        `canceled`. Every descendant (child executions, theirs, …) is canceled the same way,
        and a parent ends `canceled` only once its descendants have ended.
        """
        execution = _visible_execution(execution_id, "executions:cancel")
        service.cancel_execution(execution)
        db.session.commit()
        return execution


@blp.route("/<int:execution_id>/rerun")
class ExecutionRerun(MethodView):
    @requires("actions:execute", pack_from=None)
    @blp.arguments(RerunSchema)
    @blp.response(201, ExecutionSchema)
    @blp.alt_response(404, description="No such execution")
    @blp.alt_response(409, description="The action is disabled or was deleted")
    def post(self, data, execution_id):
        """Run an execution's action again with its parameters (optionally overridden)

        Secret values are not kept once an execution ends: give secret parameters again.
        For a workflow, `tasks` (names of tasks that failed) starts a new run there, with the
        input and what the tasks before them published; what succeeded is not run again.
        """
        original = _visible_execution(execution_id, "actions:execute")
        if data.get("tasks"):
            execution = workflows.rerun(original, data["tasks"], data["parameters"], current_principal().name)
        else:
            execution = service.rerun_execution(original, data["parameters"], current_principal().name)
        db.session.commit()
        return execution


@blp.route("/<int:execution_id>/logs")
class ExecutionLogs(MethodView):
    @requires("executions:view", pack_from=None)
    @blp.arguments(LogArgs, location="query")
    @blp.response(200, LogLineSchema(many=True), headers={"X-Next-Offset": {
        "description": "the offset that reads on after this page", "schema": {"type": "integer"}}})
    @blp.alt_response(404, description="No such execution")
    @blp.alt_response(429, description="Too many live streams open (follow=true); see Retry-After")
    @blp.doc(responses={"200": {"content": {"text/event-stream": {"schema": {
        "type": "string", "description": "with follow=true: `id: <seq>` / `data: <line JSON>` events, then `event: end`"}}}}})
    def get(self, args, execution_id):
        """Read an execution's output lines

        Lines are `{seq, ts, stream, line}` with `stream` stdout, stderr or system; `offset`
        returns the lines after that seq, at most `limit` of them; `X-Next-Offset` is the offset
        that reads on. With `follow=true` the answer is a `text/event-stream`: one event per
        line (its `id` is the seq, so a reconnecting client resumes with `Last-Event-ID`), then
        an `end` event with the final status. One answer lasts at most 50 s: a stream that
        closes without `end` is resumed by reconnecting (EventSource does so by itself). Live
        streams are capped per identity and in total (`429` with `Retry-After` above a cap).
        """
        execution = _visible_execution(execution_id)
        if args["follow"]:
            after = args["offset"]
            last_event = request.headers.get("Last-Event-ID", "")
            if last_event.isdigit():
                after = max(after, int(last_event))
            slot = _take_slot()
            try:
                gone = _disconnect_probe(request.environ.get("gunicorn.socket"))
                response = Response(stream_with_context(_follow(execution.id, after, args.get("stream"), slot, gone)),
                                    mimetype="text/event-stream",
                                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            except BaseException:
                slot.release()
                raise
            # Also when the stream never started (the client left at once): closing frees the slot.
            response.call_on_close(slot.release)
            return response
        page = read_lines(redis_client(), execution.id, execution.status in TERMINAL,
                          args["offset"], args.get("stream"), args["limit"])
        return page.lines, {"X-Next-Offset": str(page.next_offset)}


def _take_slot() -> StreamSlot:
    config = current_app.config
    try:
        return take_stream_slot(
            redis_client(), current_principal().identity_id, lifetime=FOLLOW_MAX_SECONDS,
            per_identity=config["FOLLOW_STREAMS_PER_IDENTITY"], total=config["FOLLOW_STREAMS_TOTAL"],
            per_process=config["FOLLOW_STREAM_THREADS"],
            now=time.monotonic())
    except StreamRefused as refused:
        raise APIError(f"{refused.message} Try again in {refused.retry_after} s.", code=429,
                       headers={"Retry-After": str(refused.retry_after)}) from None


def _disconnect_probe(sock: socket.socket | None) -> Callable[[], bool]:
    """Whether the client has closed its connection, without waiting for a write to fail.

    Needs the server's socket (gunicorn puts it in the environ); elsewhere a disconnect shows
    at the next write, within KEEPALIVE_SECONDS.
    """
    if sock is None:
        return lambda: False
    poller = poll()
    poller.register(sock, POLLIN)

    def gone() -> bool:
        if not poller.poll(0):
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""  # readable and empty: the peer closed
        except ValueError:  # a TLS socket cannot peek: rely on the next write
            return False
        except OSError:
            return True

    return gone


def _follow(execution_id: int, after: int, stream: str | None, slot: StreamSlot,
            client_gone: Callable[[], bool]) -> Iterator[str]:
    try:
        yield from _follow_lines(execution_id, after, stream, client_gone)
    finally:
        slot.release()


def _follow_lines(execution_id: int, after: int, stream: str | None,
                  client_gone: Callable[[], bool]) -> Iterator[str]:
    client = redis_client()
    last_sent = started = time.monotonic()
    yield f"retry: {FOLLOW_RETRY_MS}\n\n"
    while True:
        if time.monotonic() - started > FOLLOW_MAX_SECONDS:
            return  # not ended: the client reconnects (Last-Event-ID) and resumes after `after`
        if client_gone():
            return
        status = db.session.scalar(select(Execution.status).where(Execution.id == execution_id))
        terminal = status in TERMINAL
        # One bounded page per poll, whatever the log holds.
        page = read_lines(client, execution_id, terminal, after, None, FOLLOW_BATCH)
        db.session.rollback()  # hold no connection while waiting
        for line in page.lines:
            after = line["seq"]
            if stream is None or line["stream"] == stream:
                yield f"id: {line['seq']}\ndata: {json.dumps(line)}\n\n"
                last_sent = time.monotonic()
        if terminal and len(page.lines) < FOLLOW_BATCH:
            yield f"event: end\ndata: {json.dumps({'status': status})}\n\n"
            return
        if not page.lines:
            if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
            time.sleep(FOLLOW_POLL_SECONDS)
