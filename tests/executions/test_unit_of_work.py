"""One unit of work: a message goes to the broker only once its transaction commits, and a
secret written to Vault for a row that is rolled back is deleted again.

The broker here is a Redis database no worker reads, so what was sent stays countable.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.services import queue


@pytest.fixture
def secret_action(make_action):
    return make_action("uow.secretive", "local-shell-cmd", parameters={
        "password": {"type": "string", "secret": True, "required": True}, "cmd": {"default": "true"}})


def sent(client) -> int:
    return client.llen(queue.ACTIONS_QUEUE)


def test_a_rolled_back_execution_sends_nothing_and_leaves_no_secret(app, quiet_broker, secret_action):
    from app.db import db
    from app.services import executions, unit_of_work, vault

    with app.test_request_context():
        execution = executions.create_execution(executions.action_for_execute(secret_action), {"password": "s3"})
        path = vault.execution_secret_path(execution.id)
        assert vault.read_secret(path) == {"password": "s3"}  # Vault first, before the commit
        db.session.rollback()
        unit_of_work.drain()

        assert sent(quiet_broker) == 0
        assert vault.read_secret(path) is None
        db.session.remove()


def test_a_committed_execution_is_sent_once_after_the_commit(app, quiet_broker, secret_action):
    from app.db import db
    from app.services import executions, unit_of_work, vault

    with app.test_request_context():
        execution = executions.create_execution(executions.action_for_execute(secret_action), {"password": "s3"})
        db.session.flush()
        assert sent(quiet_broker) == 0  # not before the commit
        unit_of_work.commit()

        assert sent(quiet_broker) == 1
        assert vault.read_secret(vault.execution_secret_path(execution.id)) == {"password": "s3"}
        unit_of_work.drain()
        assert sent(quiet_broker) == 1  # not twice
        vault.delete_secret(vault.execution_secret_path(execution.id))
        db.session.remove()


def test_a_request_that_fails_after_creating_an_execution_sends_nothing(app, quiet_broker, worker_api, make_action):
    # A refused request leaves no row and sends nothing; an accepted one sends one message.
    ref = make_action("uow.plain", "noop", parameters={"n": {"type": "integer", "required": True}})
    created = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"n": 1}})
    assert created.status_code == 201
    assert sent(quiet_broker) == 1

    refused = worker_api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": {"n": "one"}})

    assert refused.status_code == 422
    assert sent(quiet_broker) == 1
    listed = worker_api.get("/api/v1/executions", query_string={"action": ref}).get_json()
    assert [row["id"] for row in listed] == [created.get_json()["id"]]


def test_the_orphan_sweep_removes_secrets_of_ended_and_never_committed_executions(app, committed_db,
                                                                                  secret_action):
    from datetime import timedelta

    from app.db import db
    from app.services import executions, vault, vault_upkeep

    with app.test_request_context():
        live = executions.create_execution(executions.action_for_execute(secret_action), {"password": "a"})
        ended = executions.create_execution(executions.action_for_execute(secret_action), {"password": "b"})
        ended.status = "failed"
        db.session.commit()
        db.session.info.clear()  # these are not for a worker: nothing is sent
        never = ended.id + 1000  # a crash between the Vault write and the commit
        vault.write_secret(vault.execution_secret_path(never), {"password": "c"})

        first = vault_upkeep.purge_orphan_execution_secrets()
        assert ended.id in first and never not in first and live.id not in first  # the young orphan waits
        saved, vault_upkeep.ORPHAN_SECRET_AGE = vault_upkeep.ORPHAN_SECRET_AGE, timedelta(0)
        try:
            second = vault_upkeep.purge_orphan_execution_secrets()
            assert never in second and live.id not in second
        finally:
            vault_upkeep.ORPHAN_SECRET_AGE = saved

        assert vault.read_secret(vault.execution_secret_path(live.id)) == {"password": "a"}
        assert vault.read_secret(vault.execution_secret_path(ended.id)) is None
        assert vault.read_secret(vault.execution_secret_path(never)) is None
        vault.delete_secret(vault.execution_secret_path(live.id))
        db.session.remove()


def test_the_orphan_sweep_removes_key_secrets_no_row_points_at(app, worker_api):
    import uuid
    from datetime import timedelta

    from app.services import vault, vault_upkeep

    kept, lost = f"kept_{uuid.uuid4().hex[:8]}", f"lost_{uuid.uuid4().hex[:8]}"
    assert worker_api.post("/api/v1/keys", json={"name": kept, "value": "k", "secret": True}).status_code == 201
    with app.test_request_context():
        # A crash between the Vault write and the commit of its row.
        vault.write_secret(f"keys/system/{lost}", {"value": "l"})
        vault.write_secret(f"keys/user/someone/{lost}", {"value": "l"})

        first = vault_upkeep.purge_orphan_key_secrets()
        assert f"keys/system/{lost}" not in first  # young: a write may be in flight
        saved, vault_upkeep.ORPHAN_SECRET_AGE = vault_upkeep.ORPHAN_SECRET_AGE, timedelta(0)
        try:
            removed = vault_upkeep.purge_orphan_key_secrets()
        finally:
            vault_upkeep.ORPHAN_SECRET_AGE = saved

        assert f"keys/system/{lost}" in removed and f"keys/user/someone/{lost}" in removed
        assert f"keys/system/{kept}" not in removed
        assert vault.read_secret(f"keys/system/{lost}") is None
        assert vault.read_secret(f"keys/system/{kept}") == {"value": "k"}
    worker_api.delete(f"/api/v1/keys/{kept}")


def test_an_undo_that_meets_a_vault_outage_logs_one_warning_without_a_traceback(app, caplog):
    from app.db import db
    from app.services import unit_of_work
    from app.services.vault import VaultUnavailable

    def undo(path):
        raise VaultUnavailable()

    with app.app_context(), caplog.at_level("WARNING", logger="patchbay.unit_of_work"):
        db.session.execute(text("SELECT 1"))
        unit_of_work.on_rollback(undo, "executions/1")
        db.session.rollback()
    (record,) = [r for r in caplog.records if r.name == "patchbay.unit_of_work"]
    assert record.levelname == "WARNING" and record.exc_info is None
    assert "not done: Vault (the secret store) is not available." in record.getMessage()
    assert "orphan sweep" in record.getMessage()


def test_a_released_savepoint_is_no_commit(app, quiet_broker, secret_action):
    # SQLAlchemy announces a released SAVEPOINT as a commit; work registered inside it must
    # still wait for the enclosing transaction, and go with its rollback.
    from app.db import db
    from app.services import executions, unit_of_work, vault

    with app.test_request_context():
        action = executions.action_for_execute(secret_action)
        with db.session.begin_nested():
            path = vault.execution_secret_path(executions.create_execution(action, {"password": "s3"}).id)
        unit_of_work.drain()
        assert sent(quiet_broker) == 0
        db.session.rollback()
        unit_of_work.drain()
        assert sent(quiet_broker) == 0
        assert vault.read_secret(path) is None

        with db.session.begin_nested():
            kept = executions.create_execution(action, {"password": "s3"})
        unit_of_work.commit()
        assert sent(quiet_broker) == 1
        vault.delete_secret(vault.execution_secret_path(kept.id))
        db.session.remove()


def test_a_savepoint_that_raises_takes_its_outside_work_with_it(app, quiet_broker, secret_action):
    from app.db import db
    from app.services import executions, unit_of_work, vault

    with app.test_request_context():
        action = executions.action_for_execute(secret_action)
        kept = executions.create_execution(action, {"password": "kept"})
        with pytest.raises(RuntimeError), unit_of_work.savepoint():
            path = vault.execution_secret_path(executions.create_execution(action, {"password": "dropped"}).id)
            raise RuntimeError("the block fails")
        # Its secret was deleted from Vault at once (its on_rollback undo), its message dropped.
        assert vault.read_secret(path) is None
        unit_of_work.commit()

        assert sent(quiet_broker) == 1
        assert vault.read_secret(vault.execution_secret_path(kept.id)) == {"password": "kept"}
        assert db.session.scalar(text("SELECT count(*) FROM executions")) == 1
        vault.delete_secret(vault.execution_secret_path(kept.id))
        db.session.remove()
