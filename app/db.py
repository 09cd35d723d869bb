"""Database engine, session and declarative base.

One scoped session per thread (a web request or a Celery task); the request or task that
opened it commits once at its end (services only ``flush``), and it is removed at teardown.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, MetaData, create_engine, event, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Ids are PostgreSQL bigints; a larger one in a URL names no row (rather than a query error).
BIGINT_MAX = 2**63 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB, datetime: DateTime(timezone=True)}


class IdMixin:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), default=utcnow, onupdate=utcnow
    )


class Database:
    """Holds the engine and the scoped session; configured by ``init(url)``."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session = scoped_session(sessionmaker(expire_on_commit=False))

    def init(self, url: str, **engine_options: Any) -> None:
        if self.engine is not None and self.engine.url.render_as_string(hide_password=False) == url:
            return
        if self.engine is not None:
            self.engine.dispose()
        options = {"pool_size": 5, "max_overflow": 10}
        options.update(engine_options)
        self.engine = create_engine(url, **options)
        _ping_when_idle(self.engine)
        self.session.remove()
        self.session.configure(bind=self.engine)

    def run_alone(self, sql: str, params: Sequence[Any] | dict[str, Any], *, returning: bool = False) -> Any:
        """Run one statement (driver placeholders: ``%s`` or ``%(name)s``) on a pooled
        connection in autocommit mode: committed as it runs, outside any session's
        transaction, without SQLAlchemy's execution machinery — for a small write on every
        request or execution (the audit entry, a claim), where that machinery cost more than
        the statement. ``returning``: its first row (a tuple, or None). A connection that
        failed is discarded, not returned to the pool in an unknown state."""
        connection = self.engine.raw_connection()
        driver = connection.driver_connection
        try:
            driver.autocommit = True
            cursor = driver.execute(sql, params)
            row = cursor.fetchone() if returning else None
            driver.autocommit = False
            return row
        except BaseException:
            connection.invalidate()
            raise
        finally:
            connection.close()


db = Database()

# A pooled connection idle longer than this is checked (SELECT 1) before it is handed out.
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, only where it can matter.

    ``pool_pre_ping`` pings on *every* checkout: one more round trip for each request and
    each task, which measured about 14 % of a noop execution's time in the worker. A
    connection returned moments ago is as alive as it was then; one idle for a while may have
    been closed by a restarted PostgreSQL, a proxy or a firewall, so only that one is pinged,
    and a dead one is replaced before anyone uses it (``DisconnectionError`` makes the pool
    retry with a fresh connection).
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["patchbay.returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("patchbay.returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as exc:  # noqa: BLE001 - any failure: the connection is not usable
            raise DisconnectionError("idle connection is gone") from exc
