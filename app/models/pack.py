from __future__ import annotations

from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin


class Pack(IdMixin, TimestampMixin, Base):
    """A bundle of actions, triggers, sensors and rules; its name is the ref prefix."""

    __tablename__ = "packs"

    name: Mapped[str] = mapped_column(String(128), unique=True)
    version: Mapped[str] = mapped_column(String(64), default="0.0.0")
    description: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    path: Mapped[str | None] = mapped_column(Text)
    config_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)

    @property
    def ref(self) -> str:
        return self.name
