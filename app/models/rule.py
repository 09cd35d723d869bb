from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, IdMixin, TimestampMixin
from app.models._content import PackContentMixin
from app.models.action import Action
from app.models.trigger import Trigger


class Rule(IdMixin, TimestampMixin, PackContentMixin, Base):
    """When an event of ``trigger`` matches ``criteria``, run ``action`` with ``action_parameters``."""

    __tablename__ = "rules"

    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    # RESTRICT: a trigger or action still used by a rule cannot be deleted (the API says 409).
    trigger_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("triggers.id", ondelete="RESTRICT"), index=True
    )
    trigger_parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"trigger.body.status": {"type": "equals", "pattern": "down"}, ...}
    criteria: Mapped[dict[str, Any]] = mapped_column(default=dict)
    action_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("actions.id", ondelete="RESTRICT"), index=True
    )
    action_parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)

    # Identity names; the executions the rule enforces run as its author (None: the system).
    created_by: Mapped[str | None] = mapped_column(String(255))
    updated_by: Mapped[str | None] = mapped_column(String(255))

    trigger: Mapped[Trigger] = relationship(lazy="joined")
    action: Mapped[Action] = relationship(lazy="joined")
