"""A new execution is one INSERT, and the object handed back behaves as any loaded row: what
it was not given is NULL in the table, later changes to it are written, and a rollback
takes the row away."""

from __future__ import annotations

from sqlalchemy import text


def test_a_new_row_holds_nulls_where_nothing_was_given_and_defaults_elsewhere(app, db_session, create_action):
    from app.services import executions

    action = create_action("ins.one")
    with app.test_request_context():
        execution = executions.create_execution(executions.action_for_execute(action.ref), {}, user="alice")
        row = db_session.execute(text(
            "SELECT status, result IS NULL AS no_result, error, started_at, parameters, context, attempt,"
            " wakeups, waited_wakeups, log_truncated, \"user\", created_at, scheduled_at"
            " FROM executions WHERE id = :id"), {"id": execution.id}).one()
    assert row.status == "requested"
    assert row.no_result  # SQL NULL, not JSON null
    assert (row.error, row.started_at) == (None, None)
    assert (row.parameters, row.context, row.attempt) == ({}, {}, 1)
    assert (row.wakeups, row.waited_wakeups, row.log_truncated, row.user) == (0, 0, False, "alice")
    assert row.created_at == execution.created_at and row.scheduled_at is not None
    # Every column is loaded on the object: reading one costs no query.
    assert execution.result is None and execution.finished_at is None and execution.status == "requested"


def test_a_change_to_the_new_object_is_written_and_a_rollback_removes_the_row(app, db_session, create_action):
    from app.db import db
    from app.models import Execution
    from app.services import executions

    action = create_action("ins.two")
    with app.test_request_context():
        kept = executions.create_execution(executions.action_for_execute(action.ref), {})
        kept.task_name = "renamed"
        db.session.commit()
        assert db_session.scalar(text("SELECT task_name FROM executions WHERE id = :id"), {"id": kept.id}) == "renamed"

        dropped = executions.create_execution(executions.action_for_execute(action.ref), {})
        dropped_id = dropped.id
        db.session.rollback()
        assert db_session.get(Execution, kept.id) is not None
        assert db_session.scalar(text("SELECT count(*) FROM executions WHERE id = :id"), {"id": dropped_id}) == 0


def test_a_column_that_is_not_an_execution_column_is_refused(app, db_session):
    import pytest

    from app.services.executions import insert_execution

    with pytest.raises(TypeError, match="not Execution columns"):
        insert_execution(action_ref="x.y", colour="blue")


def test_an_event_recorded_with_a_null_payload_stores_json_null(app, db_session, create_trigger):
    # An event's payload column cannot be NULL: a sensor that dispatches no payload records
    # JSON null, as the ORM did before events were written in one statement.
    from sqlalchemy import text

    from app.services.events import record_event

    create_trigger("acme.ping")
    event = record_event("acme.ping", None, source="sensor:acme.pinger")
    db_session.commit()

    assert event.payload is None
    assert db_session.scalar(text("SELECT jsonb_typeof(payload) FROM events WHERE id = :id"), {"id": event.id}) == "null"


def test_a_claim_in_a_session_that_holds_the_execution_updates_that_object(app, create_action):
    # The claim reads its row without the ORM: an execution the session already holds must be
    # the object returned, showing the claim (as populate_existing did), not a second copy.
    from app.db import db
    from app.services import execution_transitions as transitions
    from app.services import executions

    create_action("acme.noop")
    with app.test_request_context():
        execution = executions.create_execution(executions.action_for_execute("acme.noop"), {}, send=False)
        assert execution.status == "requested" and execution.started_at is None

        claimed, action, pack = transitions.claim(execution.id, "worker-1", "task-1")

        assert claimed is execution
        assert (execution.status, execution.worker_host, execution.task_id) == ("running", "worker-1", "task-1")
        assert execution.started_at is not None and action.ref == "acme.noop" and pack.name == "acme"
        assert transitions.claim(execution.id, "worker-2", None) is None  # claimed once
        assert execution not in db.session.dirty  # loaded values, nothing left to write
        db.session.rollback()
        db.session.remove()
