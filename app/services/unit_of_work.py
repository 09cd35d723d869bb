"""One unit of work: the world outside PostgreSQL hears of a change only once it is committed.

A request or a task decides things in one transaction (services only ``flush``). What it
must tell others — a Celery message, a revoke, a ``core.execution_finished`` event — is
registered with ``after_commit(fn, *args)`` and runs only if that transaction commits:

- on COMMIT the registered work becomes *ready*; on ROLLBACK it is dropped, so a rolled back
  request sends nothing (no message for a row that does not exist);
- ready work runs at ``drain()``: at the end of every request (``install``) and of every
  Celery task (tasks/celery_app.py), or at once through ``commit()`` where a task goes on
  after committing.

``on_rollback(fn, *args)`` is the converse, for work done outside PostgreSQL ahead of the
commit that must not outlive a rollback (a secret written to Vault for a row that is then
never committed). Vault writes come first, then the commit; the periodic orphan sweep
(tasks/maintenance.py) removes what a crash between the two left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.db import db
from app.errors import APIError

log = logging.getLogger("patchbay.unit_of_work")

_PENDING = "patchbay.after_commit"   # registered, waiting for the transaction's end
_READY = "patchbay.ready"            # committed, waiting for drain()
_UNDO = "patchbay.on_rollback"

Work = tuple[Callable[..., Any], tuple[Any, ...]]


def after_commit(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` once the current transaction has committed; never if it rolls back."""
    db.session().info.setdefault(_PENDING, []).append((fn, args))


def on_rollback(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` if the current transaction rolls back (undo of outside work)."""
    db.session().info.setdefault(_UNDO, []).append((fn, args))


def commit() -> None:
    """Commit the session, then run what the committed work asked for."""
    db.session.commit()
    drain()


def drain() -> None:
    """Run the ready work, in the order it was registered. A failure is logged, never raised:
    the change is committed, and each piece of work has its own recovery (the sweepers
    re-send lost messages)."""
    session = db.session()
    while True:
        ready: list[Work] = session.info.pop(_READY, [])
        if not ready:
            return
        for fn, args in ready:
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - see the docstring
                log.exception("after-commit work %s failed", getattr(fn, "__qualname__", fn))
                if session.in_transaction():
                    session.rollback()


@contextmanager
def savepoint() -> Iterator[None]:
    """A SAVEPOINT that takes its outside work with it: if the block raises, the rows it wrote
    are rolled back, the work it registered with ``after_commit`` is dropped and its
    ``on_rollback`` undo runs — the enclosing transaction goes on as if the block had not run."""
    session = db.session()
    pending_before = len(session.info.get(_PENDING, []))
    undo_before = len(session.info.get(_UNDO, []))
    try:
        with session.begin_nested():
            yield
    except BaseException:
        del session.info.get(_PENDING, [])[pending_before:]
        undo = session.info.get(_UNDO, [])
        inside, undo[undo_before:] = undo[undo_before:], []
        _undo(inside)
        raise


def statement_row(sql: str, params: dict[str, Any], *, alone: bool = False) -> tuple | None:
    """Run one statement (driver placeholders, ``%(name)s``) and return its first row.

    ``alone`` and no transaction open: on its own pooled connection in autocommit — committed
    as it runs, one round trip, no transaction for the session to end (a claim; an end with
    nothing else to write). Otherwise in the session's transaction (begun if need be), after
    flushing what the session holds, so the caller's commit decides — as tests that call it
    inside an open transaction, and an end that must commit with other writes, need.
    """
    session = db.session()
    if alone and not session.in_transaction():
        return db.run_alone(sql, params, returning=True)
    session.flush()
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchone()
    finally:
        cursor.close()


def pending_count() -> int:
    """How much work waits for a commit (tests, assertions)."""
    return len(db.session().info.get(_PENDING, []))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    # SQLAlchemy sends after_commit for a released SAVEPOINT too: that is no commit at all —
    # the enclosing transaction may still roll back, and its work must wait for it.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, [])
    session.info.pop(_UNDO, None)
    if pending:
        session.info.setdefault(_READY, []).extend(pending)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: Any) -> None:
    # The outermost transaction ended without a commit (rolled back, or the session closed
    # with it open): its work is dropped and what it did outside PostgreSQL is undone.
    # Savepoints (begin_nested) keep theirs: the enclosing transaction still decides (a block
    # under savepoint() that raised has dropped its own).
    if transaction.parent is not None or transaction.nested:
        return
    session.info.pop(_PENDING, None)
    _undo(session.info.pop(_UNDO, []))


def _undo(work: list[Work]) -> None:
    for fn, args in work:
        try:
            fn(*args)
        except APIError as exc:  # an expected outage (Vault down): no traceback, one line
            log.warning("undo after rollback (%s) not done: %s; the orphan sweep removes what it left",
                        getattr(fn, "__qualname__", fn), exc.message)
        except Exception:  # noqa: BLE001 - the orphan sweep removes what an undo could not
            log.exception("undo after rollback (%s) failed", getattr(fn, "__qualname__", fn))


def install(app) -> None:
    """Drain after every request, before the response leaves (so a test client that reads
    the response can rely on the message having been sent)."""

    @app.after_request
    def _drain(response):
        drain()
        return response
