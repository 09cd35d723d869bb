from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, utcnow

REQUESTED = "requested"
SCHEDULED = "scheduled"
RUNNING = "running"
PENDING = "pending"  # waiting on a person (an inquiry)
CANCELING = "canceling"
PAUSING = "pausing"  # a workflow asked to pause: its running tasks finish, no new one starts
PAUSED = "paused"    # a paused workflow: nothing of it runs until it is resumed
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMEOUT = "timeout"
CANCELED = "canceled"
ABANDONED = "abandoned"

STATUSES = (REQUESTED, SCHEDULED, RUNNING, PENDING, PAUSING, PAUSED, CANCELING, SUCCEEDED, FAILED, TIMEOUT, CANCELED,
            ABANDONED)
TERMINAL = frozenset({SUCCEEDED, FAILED, TIMEOUT, CANCELED, ABANDONED})
QUEUED = frozenset({REQUESTED, SCHEDULED})
# Claimed: a worker runs it, or it waits on children (a paused workflow is not active: it
# waits on nothing until resumed).
ACTIVE = frozenset({RUNNING, CANCELING, PAUSING})
# What a waiting execution waits on (``waiting_on``; NULL while a worker runs it).
WAITING_ON_CHILDREN = "children"  # status running (or canceling)
WAITING_ON_PERSON = "inquiry"     # status pending
LOG_STREAMS = ("stdout", "stderr", "system")
# Keys of an execution's ``context`` kept for the worker (tasks/container.py): what its runner
# kept for the resume (a workflow's state, also after the end, for a rerun), and where a
# waiting execution's log goes on.
RUNNER_STATE = "runner_state"
LOG_POSITION = "log_position"


class Execution(IdMixin, Base):
    """One run of an action. Parameters are stored with secret values replaced by references."""

    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_action_ref_created_at", "action_ref", "created_at"),
        Index("ix_executions_status_created_at", "status", "created_at"),
        Index("ix_executions_pack_name_created_at", "pack_name", "created_at"),
        Index("ix_executions_rule_ref_created_at", "rule_ref", "created_at"),
        Index("ix_executions_user_created_at", "user", "created_at"),
        Index("ix_executions_active_heartbeat", "heartbeat_at",
              postgresql_where=text("status IN ('canceling', 'pausing', 'running') AND waiting_on IS NULL")),
        Index("ix_executions_waiting", "woken_at", postgresql_where=text("waiting_on IS NOT NULL")),
    )

    action_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("actions.id", ondelete="SET NULL"), index=True
    )
    action_ref: Mapped[str] = mapped_column(String(257))
    pack_name: Mapped[str] = mapped_column(String(128))
    runner_type: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(32), default=REQUESTED)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)

    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    root_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    enforcement_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("enforcements.id", ondelete="SET NULL"), index=True
    )
    rule_ref: Mapped[str | None] = mapped_column(String(257))
    user: Mapped[str | None] = mapped_column(String(255))
    # Workflow bookkeeping (task name within the parent, with-items index, context).
    task_name: Mapped[str | None] = mapped_column(String(255))
    item_index: Mapped[int | None] = mapped_column(Integer)  # the item of a `with` items task
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)

    timeout: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    rerun_of: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("executions.id", ondelete="SET NULL")
    )
    task_id: Mapped[str | None] = mapped_column(String(64))
    worker_host: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(64))
    log_truncated: Mapped[bool] = mapped_column(Boolean, default=False)

    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, index=True)
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]

    # A waiting execution (docs/architecture.md, "Executions that wait") holds no worker:
    # ``waiting_on`` says on what; whoever should resume it adds one to ``wakeups`` in the
    # transaction that ends the wait (a child ending, an answer), then sends the resume
    # message. ``waited_wakeups`` is the count the runner had seen when it began to wait, so
    # a wake that arrives while the runner still works is never lost.
    waiting_on: Mapped[str | None] = mapped_column(String(32))
    wakeups: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    waited_wakeups: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    woken_at: Mapped[datetime | None]


class ExecutionLogLine(IdMixin, Base):
    """One line of an execution's stdout/stderr, persisted when the execution ends."""

    __tablename__ = "execution_log_lines"
    __table_args__ = (Index("uq_execution_log_lines_execution_id_seq", "execution_id", "seq", unique=True),)

    execution_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("executions.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    ts: Mapped[datetime]
    stream: Mapped[str] = mapped_column(String(16))
    line: Mapped[str] = mapped_column(Text)
