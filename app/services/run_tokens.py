"""Mint and forget run tokens: a python action's or sensor poll's way to the keys API.

A worker holds no SECRET_KEY and hands action code no database or Vault credentials; the
child gets instead a random token (on stdin, as ``ST2_AUTH_TOKEN`` with ``ST2_API_URL``)
that app/security/run_tokens.py accepts on the keys endpoints while the run goes on. Only
its hash is stored. Each mint commits at once (the web process must see the row while the
child runs) and purges a batch of tokens whose run has ended.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, or_, select

from app.db import db, utcnow
from app.models import Execution, RunToken
from app.models.execution import TERMINAL
from app.security.run_tokens import hash_run_token

RUNNERS_WITH_TOKEN = frozenset({"python-script"})  # the runners whose code calls the datastore
MARGIN_SECONDS = 300  # past the run's timeout: the status check ends a token sooner anyway
PURGE_BATCH = 500


def api_url() -> str:
    """Where workers reach the web API (PATCHBAY_API_URL); empty: no tokens are minted."""
    return current_app.config.get("PATCHBAY_API_URL") or ""


def mint_for_execution(execution: Execution, timeout: float) -> str | None:
    """A token for a running execution of a python action (committed), else None."""
    if execution.runner_type not in RUNNERS_WITH_TOKEN or not api_url():
        return None
    return _mint(RunToken(execution_id=execution.id, pack=execution.pack_name, user=execution.user), timeout)


def mint_for_sensor(sensor_ref: str, pack: str, timeout: float) -> str | None:
    """A token for one poll of a sensor (committed; ``forget`` it when the poll ends), else None."""
    if not api_url():
        return None
    return _mint(RunToken(sensor_ref=sensor_ref, pack=pack, user=None), timeout)


def _mint(row: RunToken, timeout: float) -> str:
    token = secrets.token_urlsafe(32)
    row.token_hash = hash_run_token(token)
    row.expires_at = utcnow() + timedelta(seconds=timeout + MARGIN_SECONDS)
    purge_ended()
    db.session.add(row)
    db.session.commit()
    return token


def forget(token: str | None) -> None:
    """Delete a token now (a sensor poll's, at its end); flush only."""
    if token:
        db.session.execute(delete(RunToken).where(RunToken.token_hash == hash_run_token(token)))


def purge_ended(batch: int = PURGE_BATCH) -> int:
    """Delete a batch of tokens that can no longer be used (expired, or their execution ended)."""
    ended = select(Execution.id).where(Execution.id == RunToken.execution_id, Execution.status.in_(TERMINAL))
    ids = list(db.session.scalars(
        select(RunToken.id).where(or_(RunToken.expires_at <= utcnow(), ended.exists())).limit(batch)))
    if ids:
        db.session.execute(delete(RunToken).where(RunToken.id.in_(ids)))
    return len(ids)
