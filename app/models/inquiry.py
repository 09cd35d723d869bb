from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, utcnow


class Inquiry(IdMixin, Base):
    """A question to a person; its execution stays ``pending`` until it is answered."""

    __tablename__ = "inquiries"
    __table_args__ = (Index("ix_inquiries_status_created_at", "status", "created_at"),)

    execution_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    root_execution_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    route: Mapped[str] = mapped_column(String(255), default="")
    users: Mapped[list[Any]] = mapped_column(default=list)
    roles: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(32), default="pending")
    response: Mapped[dict[str, Any] | None]
    responder: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    expires_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
