from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin


class Key(IdMixin, TimestampMixin, Base):
    """A key-value entry. Plain values live here; a secret's value lives in Vault only."""

    __tablename__ = "keys"
    __table_args__ = (
        Index("uq_keys_scope_owner_name", "scope", "owner", "name", unique=True, postgresql_nulls_not_distinct=True),
        # The purge's question (which keys have expired), over the keys that can expire only.
        Index("ix_keys_expires_at", "expires_at", postgresql_where=text("expires_at IS NOT NULL")),
    )

    name: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(16), default="system")  # system | user
    owner: Mapped[str | None] = mapped_column(String(255))  # identity name for user scope
    value: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[bool] = mapped_column(Boolean, default=False)
    vault_path: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None]
