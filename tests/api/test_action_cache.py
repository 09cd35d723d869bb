"""Execute looks its action up in a per-process cache checked against a Redis stamp: a hit
reads no row, and any change to an action or pack is seen at once, here and elsewhere."""

from __future__ import annotations

from sqlalchemy import event

from app.db import db


def _action_selects(app):
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM actions" in statement:
            seen.append(statement)

    return seen, record


def test_a_second_execute_reads_no_action_row(app, api, create_action):
    create_action("cache.one")
    assert api.post("/api/v1/actions/cache.one/execute", json={}).status_code == 201
    seen, record = _action_selects(app)
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert api.post("/api/v1/actions/cache.one/execute", json={}).status_code == 201
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert seen == []


def test_a_disabled_action_is_refused_at_once_although_it_was_cached(api, create_action):
    create_action("cache.two")
    assert api.post("/api/v1/actions/cache.two/execute", json={}).status_code == 201
    assert api.patch("/api/v1/actions/cache.two", json={"enabled": False}).status_code == 200
    refused = api.post("/api/v1/actions/cache.two/execute", json={})
    assert refused.status_code == 409
    assert "disabled" in refused.json["message"]


def test_a_committed_change_to_an_action_moves_the_stamp_other_processes_check(app, api, create_action):
    from app.extensions import redis_client
    from app.services.action_cache import STAMP

    create_action("cache.three")
    assert api.post("/api/v1/actions/cache.three/execute", json={}).status_code == 201
    with app.app_context():
        before = redis_client().get(STAMP)
    assert api.patch("/api/v1/actions/cache.three", json={"description": "changed"}).status_code == 200
    with app.app_context():
        after = redis_client().get(STAMP)
    assert before is not None and after is not None and before != after


def test_a_deleted_action_is_404_although_it_was_cached(api, create_action):
    create_action("cache.four")
    assert api.post("/api/v1/actions/cache.four/execute", json={}).status_code == 201
    assert api.delete("/api/v1/actions/cache.four").status_code in (200, 204)
    gone = api.post("/api/v1/actions/cache.four/execute", json={})
    assert gone.status_code == 404


def test_a_change_by_another_process_is_seen_by_the_next_execute(app, api, create_action):
    # The content stamp is read along with authentication's stamps (one MGET); a row changed
    # and a stamp moved by another process, whose flush this process never saw, must still
    # be seen by the very next call.
    import secrets

    from sqlalchemy import text

    from app.extensions import redis_client
    from app.services.action_cache import STAMP

    create_action("cache.five")
    assert api.post("/api/v1/actions/cache.five/execute", json={}).status_code == 201
    with app.app_context():
        db.session.execute(text("UPDATE actions SET enabled = false WHERE name = 'five'"))
        db.session.commit()
        redis_client().set(STAMP, secrets.token_hex(16))
    refused = api.post("/api/v1/actions/cache.five/execute", json={})
    assert refused.status_code == 409
    assert "disabled" in refused.json["message"]
