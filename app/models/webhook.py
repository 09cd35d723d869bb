from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, utcnow


class WebhookRequest(IdMixin, Base):
    """One request to a declared webhook: who sent it, what was answered, the event it made."""

    __tablename__ = "webhook_requests"
    __table_args__ = (
        Index("ix_webhook_requests_url_created_at", "url", "created_at"),
        Index("ix_webhook_requests_outcome_created_at", "outcome", "created_at"),
        # Pack-scoped readers filter on the packs whose rules declared the webhook.
        Index("ix_webhook_requests_packs", "packs", postgresql_using="gin"),
    )

    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, index=True)
    url: Mapped[str] = mapped_column(String(512))
    packs: Mapped[list[str]] = mapped_column(ARRAY(String(128)), default=list)
    source_address: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    # Events are purged after a while; the log keeps its row and loses the link.
    event_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("events.id", ondelete="SET NULL"))
    delivery_id: Mapped[str | None] = mapped_column(String(128))
    principal: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(64))
