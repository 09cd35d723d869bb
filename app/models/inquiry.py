from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, utcnow
from app.engine.parameters import mask_secret_properties

INQUIRY_STATUSES = PENDING, RESPONDED, TIMED_OUT, CANCELED = "pending", "responded", "timed_out", "canceled"


class Inquiry(IdMixin, Base):
    """A question to a person; its execution stays ``pending`` until it is answered."""

    __tablename__ = "inquiries"
    __table_args__ = (
        Index("ix_inquiries_status_created_at", "status", "created_at"),
        # The expiry sweep's question (which pending inquiries are past expires_at).
        Index("ix_inquiries_pending_expires_at", "expires_at",
              postgresql_where=text("status = 'pending' AND expires_at IS NOT NULL")),
    )

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

    def shown_response(self) -> Any:
        """The response with every property the schema marks ``secret: true`` shown as ********."""
        return mask_secret_properties(self.schema or {}, self.response)
