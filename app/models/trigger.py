from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin
from app.models._content import PackContentMixin


class Trigger(IdMixin, TimestampMixin, PackContentMixin, Base):
    """A trigger type: what an event of this kind carries and how it is parameterised."""

    __tablename__ = "triggers"

    parameters_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
