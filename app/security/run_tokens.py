"""Run tokens (``X-Auth-Token``): what python actions and sensor polls call the keys API with.

A worker mints one per run (app/services/run_tokens.py) and hands it to the child on stdin;
only its SHA-256 is stored. Workers hold no SECRET_KEY, so the hash is not keyed: the token
is 256 random bits, which no one can guess from its hash (as for API keys, a fast hash is as
safe as a slow one for such a secret). A token speaks for its run only while that run goes
on: an execution still ``running`` or ``canceling``, a sensor poll until its row is deleted
at the poll's end; either way not past ``expires_at``.
"""

from __future__ import annotations

import hashlib

from flask import request
from sqlalchemy import select

from app.db import db, utcnow
from app.errors import Unauthorized
from app.models import Execution, Identity, PermissionGrant, RoleAssignment, RunToken
from app.models.execution import CANCELING, RUNNING
from app.security.principal import Principal, RunScope

RUN_TOKEN_HEADER = "X-Auth-Token"  # StackStorm's header for ST2_AUTH_TOKEN
KEYS_BLUEPRINT = "keys"  # the only endpoints a run token opens
# What a run may do with the keys it reaches; reading secrets follows its user's grants.
RUN_GRANTS = frozenset({("keys:view", None), ("keys:create", None), ("keys:update", None), ("keys:delete", None)})
DECRYPT = ("keys:decrypt", None)
INVALID_RUN_TOKEN = "The run token is not valid, or its run has ended."


def hash_run_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def live_scope(token: str) -> RunScope | None:
    """What ``token`` speaks for, None unless its run is still going on."""
    row = db.session.execute(
        select(RunToken.pack, RunToken.user, RunToken.execution_id, RunToken.sensor_ref, Execution.status)
        .outerjoin(Execution, Execution.id == RunToken.execution_id)
        .where(RunToken.token_hash == hash_run_token(token), RunToken.expires_at > utcnow())
    ).first()
    if row is None or (row.execution_id is not None and row.status not in (RUNNING, CANCELING)):
        return None
    return RunScope(row.pack, row.user, row.execution_id, row.sensor_ref)


def principal_for_run_token(token: str) -> Principal:
    """The Principal of a run token presented to the keys API; 401 anywhere else or once ended."""
    if request.blueprint != KEYS_BLUEPRINT:
        raise Unauthorized(f"{RUN_TOKEN_HEADER} is accepted by /api/v1/keys only.")
    scope = live_scope(token.strip())
    if scope is None:
        raise Unauthorized(INVALID_RUN_TOKEN)
    if scope.user is None:
        return Principal(identity_id=0, name=f"sensor:{scope.sensor_ref}", grants=RUN_GRANTS, run_scope=scope)
    identity = db.session.execute(select(Identity.id, Identity.enabled).where(Identity.name == scope.user)).first()
    if identity is None or not identity.enabled:
        raise Unauthorized(INVALID_RUN_TOKEN)
    decrypts = db.session.scalar(
        select(PermissionGrant.id).join(RoleAssignment, RoleAssignment.role_id == PermissionGrant.role_id)
        .where(RoleAssignment.identity_id == identity.id, PermissionGrant.permission == DECRYPT[0],
               PermissionGrant.pack.is_(None)).limit(1)) is not None
    return Principal(identity_id=identity.id, name=scope.user, grants=RUN_GRANTS | ({DECRYPT} if decrypts else set()),
                     run_scope=scope)
