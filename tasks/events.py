"""process_event: the rules engine's task; the behaviour is app/services/rules_engine.py."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from app.services import queue, rules_engine


@shared_task(name=queue.PROCESS_EVENT, acks_late=True, reject_on_worker_lost=True)
def process_event(event_id: int) -> dict[str, Any]:
    return rules_engine.process_event(event_id)
