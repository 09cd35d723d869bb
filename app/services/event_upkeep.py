"""Keeping events moving and bounded: re-send the lost, free the stuck, purge the old.

- ``pending`` past a grace period: its message was lost (broker down at enqueue) → sent again;
- ``processing`` with a claim older than the claim age: its worker died mid-way → back to
  ``pending`` and sent again (the unique enforcement per event and rule keeps it from
  enforcing a rule twice);
- older than EVENT_RETENTION_DAYS: deleted with their enforcements, in batches; executions
  they caused stay, marked ``event_purged`` in their context. Webhook requests of that age
  go too.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB

from app.db import db, utcnow
from app.models import Enforcement, Event, Execution, WebhookRequest
from app.services.events import PENDING, PROCESSING

BATCH = 1000


def lost_pending(grace_seconds: int, limit: int = 500) -> list[Event]:
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    return list(db.session.scalars(select(Event).where(Event.status == PENDING, Event.created_at < cutoff)
                                   .order_by(Event.created_at).limit(limit)))


def release_stuck(claim_seconds: int, limit: int = 500) -> list[int]:
    """``processing`` events claimed longer ago than ``claim_seconds`` → ``pending`` (flush only)."""
    cutoff = utcnow() - timedelta(seconds=claim_seconds)
    stuck = select(Event.id).where(Event.status == PROCESSING, Event.claimed_at < cutoff).limit(limit)
    return list(db.session.scalars(update(Event).where(Event.id.in_(stuck.scalar_subquery()),
                                                       Event.status == PROCESSING)
                                   .values(status=PENDING, claimed_at=None).returning(Event.id)))


def purge_batch(retention_days: int, batch: int = BATCH) -> int:
    """Delete one batch of events older than the retention, with their enforcements (flush only)."""
    cutoff = utcnow() - timedelta(days=retention_days)
    event_ids = list(db.session.scalars(select(Event.id).where(Event.created_at < cutoff)
                                        .order_by(Event.created_at).limit(batch)))
    old_enforcements = select(Enforcement.id).where(
        (Enforcement.event_id.in_(event_ids)) | (Enforcement.created_at < cutoff)).limit(batch * 4)
    enforcement_ids = list(db.session.scalars(old_enforcements))
    if enforcement_ids:
        db.session.execute(update(Execution).where(Execution.enforcement_id.in_(enforcement_ids))
                           .values(context=Execution.context.op("||")(literal({"event_purged": True}, JSONB))))
        db.session.execute(delete(Enforcement).where(Enforcement.id.in_(enforcement_ids)))
    if event_ids:
        db.session.execute(delete(Event).where(Event.id.in_(event_ids)))
    # The webhook request log is a record of what happened too, kept as long.
    old_requests = select(WebhookRequest.id).where(WebhookRequest.created_at < cutoff).limit(batch)
    requests = db.session.execute(delete(WebhookRequest).where(WebhookRequest.id.in_(old_requests.scalar_subquery())))
    return len(event_ids) + len(enforcement_ids) + (requests.rowcount or 0)
