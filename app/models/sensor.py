from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin, utcnow
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


class SensorValue(IdMixin, Base):
    """A value a sensor stored with ``sensor_service.set_value`` (its cursor), kept across polls."""

    __tablename__ = "sensor_values"
    __table_args__ = (UniqueConstraint("sensor_ref", "name"),)

    # By ref, not id: the cursor survives the pack being registered again.
    sensor_ref: Mapped[str] = mapped_column(String(257), index=True)
    name: Mapped[str] = mapped_column(String(512))
    value: Mapped[Any] = mapped_column(JSONB, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)
