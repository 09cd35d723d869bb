from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin
from app.models._content import PackContentMixin


class Action(IdMixin, TimestampMixin, PackContentMixin, Base):
    """Something that can run: a runner type plus parameters (a JSON-Schema-like dict)."""

    __tablename__ = "actions"

    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    runner_type: Mapped[str] = mapped_column(String(64), index=True)
    entry_point: Mapped[str] = mapped_column(Text, default="")
    # {name: {type, description, default, required, secret, immutable, position, enum, ...}}
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timeout: Mapped[int | None] = mapped_column(Integer)
    # {"retries": 2, "delay": 5, "on": ["failed", "timeout", "abandoned"]}
    retry: Mapped[dict[str, Any]] = mapped_column(default=dict)
