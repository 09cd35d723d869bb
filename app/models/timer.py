from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class TimerState(Base):
    """When a timer (app/engine/timers.py) last fired: a tick records its event only if it is
    later than this, so a second beat or a redelivered message never fires it twice."""

    __tablename__ = "timer_states"

    timer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_fired_at: Mapped[datetime]
