"""Execution API shapes: the execution, list/log/stats arguments, execute and rerun bodies."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma

from app.db import BIGINT_MAX
from app.models.execution import LOG_STREAMS, STATUSES
from app.schemas.common import StrictSchema


class ExecuteSchema(StrictSchema):
    parameters = ma.fields.Dict(keys=ma.fields.String(), load_default=dict,
                                metadata={"description": "values for the action's parameters"})


class RerunSchema(StrictSchema):
    parameters = ma.fields.Dict(keys=ma.fields.String(), load_default=dict,
                                metadata={"description": "overrides; secret parameters must be given again"})
    tasks = ma.fields.List(ma.fields.String(validate=ma.validate.Length(min=1, max=255)),
                           validate=ma.validate.Length(min=1, max=100), metadata={
                               "description": "workflows only: rerun from these tasks (that failed), keeping what "
                                              "the tasks before them published"})


class ExecutionSummarySchema(ma.Schema):
    """What a list shows: everything but the result (GET by id has it)."""

    class Meta:
        ordered = True

    id = ma.fields.Integer()
    action = ma.fields.String(attribute="action_ref")
    pack = ma.fields.String(attribute="pack_name")
    runner_type = ma.fields.String()
    status = ma.fields.String()
    waiting_on = ma.fields.String(allow_none=True, metadata={
        "description": "what a waiting execution waits on, holding no worker: `children` (status "
                       "`running` or `canceling`) or `inquiry` (status `pending`); null otherwise"})
    parameters = ma.fields.Dict(metadata={"description": "secret values shown as ********"})
    error = ma.fields.String(allow_none=True)
    parent_id = ma.fields.Integer(allow_none=True)
    root_id = ma.fields.Integer(allow_none=True)
    enforcement_id = ma.fields.Integer(allow_none=True)
    rule = ma.fields.String(attribute="rule_ref", allow_none=True)
    user = ma.fields.String(allow_none=True)
    task_name = ma.fields.String(allow_none=True, metadata={"description": "the workflow task it runs"})
    item_index = ma.fields.Integer(allow_none=True, metadata={"description": "its item of a `with` items task"})
    attempt = ma.fields.Integer()
    rerun_of = ma.fields.Integer(allow_none=True)
    timeout = ma.fields.Integer(allow_none=True, metadata={"description": "seconds"})
    worker_host = ma.fields.String(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    log_truncated = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    scheduled_at = ma.fields.DateTime(allow_none=True)
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    heartbeat_at = ma.fields.DateTime(allow_none=True)
    duration = ma.fields.Method("get_duration", metadata={"description": "seconds from start to end"})

    def get_duration(self, execution) -> float | None:
        if execution.started_at and execution.finished_at:
            return round((execution.finished_at - execution.started_at).total_seconds(), 3)
        return None


class ExecutionSchema(ExecutionSummarySchema):
    result = ma.fields.Dict(allow_none=True)
    context = ma.fields.Dict()


class StatusList(ma.fields.String):
    """``status=failed,timeout`` (or the parameter repeated)."""

    def _deserialize(self, value, attr, data, **kwargs):
        values = [v.strip() for v in super()._deserialize(value, attr, data, **kwargs).split(",") if v.strip()]
        unknown = [v for v in values if v not in STATUSES]
        if unknown or not values:
            raise ma.ValidationError(f"Must be one or more of: {', '.join(STATUSES)}.")
        return values


class ExecutionListArgs(ma.Schema):
    status = StatusList(metadata={"description": "comma-separated statuses"})
    action = ma.fields.String(validate=ma.validate.Length(max=257), metadata={"description": "action ref"})
    pack = ma.fields.String(validate=ma.validate.Length(max=128))
    parent = ma.fields.Integer(validate=ma.validate.Range(min=1, max=BIGINT_MAX), metadata={"description": "parent execution id"})
    root = ma.fields.Integer(validate=ma.validate.Range(min=1, max=BIGINT_MAX),
                             metadata={"description": "a whole tree: the root execution and every descendant"})
    rule = ma.fields.String(validate=ma.validate.Length(max=257), metadata={"description": "rule ref"})
    enforcement = ma.fields.Integer(validate=ma.validate.Range(min=1, max=BIGINT_MAX))
    user = ma.fields.String(validate=ma.validate.Length(max=255))
    since = ma.fields.AwareDateTime(default_timezone=UTC, metadata={"description": "created at or after (ISO 8601)"})
    until = ma.fields.AwareDateTime(default_timezone=UTC, metadata={"description": "created before (ISO 8601)"})
    sort = ma.fields.String(metadata={"description": "created_at or id; prefix '-' for descending (default -created_at)"})


class ChildrenArgs(ma.Schema):
    depth = ma.fields.Integer(validate=ma.validate.Range(min=1, max=100),
                              metadata={"description": "levels below the execution (default 1: direct children)"})
    recursive = ma.fields.Boolean(load_default=False, metadata={"description": "the whole tree below it"})


class ChildSchema(ExecutionSummarySchema):
    depth = ma.fields.Integer(metadata={"description": "1 for a direct child, 2 for its children, …"})


class LogArgs(ma.Schema):
    stream = ma.fields.String(validate=ma.validate.OneOf(LOG_STREAMS))
    offset = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=2**31 - 1),
                               metadata={"description": "return lines with seq greater than this"})
    limit = ma.fields.Integer(load_default=1000, validate=ma.validate.Range(min=1, max=10_000))
    follow = ma.fields.Boolean(load_default=False,
                               metadata={"description": "stream as Server-Sent Events until the execution ends"})


class LogLineSchema(ma.Schema):
    class Meta:
        ordered = True

    seq = ma.fields.Integer()
    ts = ma.fields.String(metadata={"description": "ISO 8601 UTC"})
    stream = ma.fields.String()
    line = ma.fields.String()


class StatsArgs(ma.Schema):
    since = ma.fields.AwareDateTime(default_timezone=UTC, metadata={"description": "default: 24 hours ago"})
    until = ma.fields.AwareDateTime(default_timezone=UTC, metadata={"description": "default: now"})
    pack = ma.fields.String(validate=ma.validate.Length(max=128))
    top = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100),
                            metadata={"description": "how many actions to list"})


class ActionStatsSchema(ma.Schema):
    action = ma.fields.String()
    total = ma.fields.Integer()
    by_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())


class StatsSchema(ma.Schema):
    class Meta:
        ordered = True

    since = ma.fields.DateTime()
    until = ma.fields.DateTime()
    total = ma.fields.Integer()
    by_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    by_action = ma.fields.List(ma.fields.Nested(ActionStatsSchema))
