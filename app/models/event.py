from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, utcnow

# The status words, here so the services and the API's schemas share one home.
EVENT_STATUSES = ("pending", "processing", "processed", "failed")
ENFORCEMENT_STATUSES = ("succeeded", "failed")


class Event(IdMixin, Base):
    """Something happened: a trigger fired with a payload (status pending → processing → processed)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_trigger_ref_created_at", "trigger_ref", "created_at"),
        Index("ix_events_status_created_at", "status", "created_at"),
        Index("ix_events_source_created_at", "source", "created_at"),
        Index("ix_events_pack_name_created_at", "pack_name", "created_at"),
    )

    trigger_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("triggers.id", ondelete="SET NULL")
    )
    trigger_ref: Mapped[str] = mapped_column(String(257))
    # The trigger's pack, for pack-scoped permissions (kept if the trigger is deleted).
    pack_name: Mapped[str] = mapped_column(String(128), server_default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(255), default="api")
    status: Mapped[str] = mapped_column(String(32), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, index=True)
    # When a worker claimed it (pending → processing): a claim too old was lost with its worker.
    claimed_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]


class Enforcement(IdMixin, Base):
    """A rule matched an event; records the rule (by ref too, in case it is deleted) and outcome."""

    __tablename__ = "enforcements"
    __table_args__ = (
        Index("ix_enforcements_rule_ref_created_at", "rule_ref", "created_at"),
        Index("ix_enforcements_status_created_at", "status", "created_at"),
        Index("ix_enforcements_pack_name_created_at", "pack_name", "created_at"),
        # A duplicate delivery of an event can never enforce a rule twice.
        UniqueConstraint("event_id", "rule_id"),
    )

    event_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("events.id", ondelete="SET NULL"), index=True
    )
    rule_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("rules.id", ondelete="SET NULL"), index=True
    )
    rule_ref: Mapped[str] = mapped_column(String(257))
    # The rule's pack, for pack-scoped permissions.
    pack_name: Mapped[str] = mapped_column(String(128), server_default="")
    status: Mapped[str] = mapped_column(String(32), default="succeeded")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, index=True)
