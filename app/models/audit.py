from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, utcnow


class AuditEntry(IdMixin, Base):
    """Who did what to which resource, when, with what outcome (never a secret value)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_actor_created_at", "actor", "created_at"),
        Index("ix_audit_log_resource_type_created_at", "resource_type", "created_at"),
    )

    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(128))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_ref: Mapped[str | None] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure | denied
    status_code: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
