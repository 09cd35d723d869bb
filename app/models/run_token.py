from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, utcnow


class RunToken(IdMixin, Base):
    """The hash of a token handed to one running python action or sensor poll (never the token).

    It reaches the keys API only: its pack's keys and its user's own (app/services/run_tokens.py).
    """

    __tablename__ = "run_tokens"
    __table_args__ = (
        CheckConstraint("(execution_id IS NULL) <> (sensor_ref IS NULL)", name="one_run"),
    )

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    execution_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("executions.id", ondelete="CASCADE"), index=True)
    sensor_ref: Mapped[str | None] = mapped_column(String(257))
    pack: Mapped[str] = mapped_column(String(128))
    user: Mapped[str | None] = mapped_column(String(255))  # identity name; None: no user-scoped keys
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
