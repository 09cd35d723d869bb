from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin
from app.models._content import PackContentMixin


class Sensor(IdMixin, TimestampMixin, PackContentMixin, Base):
    """Polling code in a pack; beat calls its ``poll()`` every ``poll_interval`` seconds."""

    __tablename__ = "sensors"

    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    class_name: Mapped[str] = mapped_column(String(255))
    entry_point: Mapped[str] = mapped_column(Text)
    poll_interval: Mapped[int | None] = mapped_column(Integer)
    trigger_types: Mapped[list[Any]] = mapped_column(default=list)
    last_polled_at: Mapped[datetime | None]
