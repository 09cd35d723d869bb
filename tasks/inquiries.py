"""Inquiry upkeep: inquiries past their ``expires_at`` time out.

``expire_inquiries`` marks them ``timed_out`` in batches (one guarded UPDATE each, so an
answer racing the expiry wins or loses cleanly) and wakes their executions: the resumed
``core.ask`` ends ``failed``, and a workflow waiting on it takes its failure path.
"""

from __future__ import annotations

import logging
from typing import Any

from app.services import inquiries, queue, unit_of_work
from tasks.periodic import periodic

log = logging.getLogger("patchbay.inquiries")

EXPIRE_SECONDS = 15  # how late past its ttl an inquiry may time out
EXPIRE_LOCK_SECONDS = 120
EXPIRE_MAX_BATCHES = 100  # one run times out at most this many batches; the next run goes on


@periodic(queue.EXPIRE_INQUIRIES, every=EXPIRE_SECONDS, lock_seconds=EXPIRE_LOCK_SECONDS)
def expire_inquiries() -> dict[str, Any]:
    expired: list[int] = []
    for _ in range(EXPIRE_MAX_BATCHES):
        batch = inquiries.expire_batch()
        unit_of_work.commit()  # the executions' resume messages go now
        expired += batch
        if len(batch) < inquiries.EXPIRE_BATCH:
            break
    if expired:
        log.info("%d inquiries timed out: %s", len(expired), expired[:20])
    return {"skipped": False, "timed_out": len(expired)}
