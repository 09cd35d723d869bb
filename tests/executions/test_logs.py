"""Execution logs: readable while running (Redis) and after (PostgreSQL), capped, read in
bounded pages, followable by a bounded number of live streams."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from app.services.execution_logs import LINE_OVERHEAD_BYTES
from tests.executions.conftest import WORKER_ENV, wait_for, wait_until_done

LOG_CAP = int(WORKER_ENV["EXECUTION_LOG_MAX_BYTES"])
EXPOSES_CMD = {"cmd": {"type": "string", "required": True}}  # callers set only what an action exposes

pytestmark = pytest.mark.usefixtures("no_stream_slots")


@pytest.fixture
def go(action_tmp):
    """A file the test creates to let a waiting action go on."""
    return action_tmp / "go"


def execute(api, ref: str, **parameters) -> dict:
    response = api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": parameters})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def lines_of(api, execution_id: int, **query) -> list[dict]:
    response = api.get(f"/api/v1/executions/{execution_id}/logs", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_logs_while_running_and_after_a_redis_flush(app, worker_api, make_action, go):
    ref = make_action("logs.wait", "local-shell-cmd", parameters=EXPOSES_CMD)
    created = execute(worker_api, ref, cmd=f"echo one; echo warn >&2; while [ ! -f {go} ]; do sleep 0.1; done; echo two")

    during = wait_for(lambda: [i for i in lines_of(worker_api, created["id"]) if i["line"] in ("one", "warn")]
                      if len(lines_of(worker_api, created["id"])) == 2 else None)
    assert {(i["stream"], i["line"]) for i in during} == {("stdout", "one"), ("stderr", "warn")}
    assert worker_api.get(f"/api/v1/executions/{created['id']}").get_json()["status"] == "running"
    go.touch()
    assert wait_until_done(worker_api, created["id"])["status"] == "succeeded"

    from app.extensions import redis_client

    with app.app_context():
        redis_client().flushdb()
    after = lines_of(worker_api, created["id"])
    assert [i["line"] for i in after if i["stream"] == "stdout"] == ["one", "two"]
    assert [i["seq"] for i in after] == [1, 2, 3]
    assert all(i["ts"].endswith("+00:00") for i in after)
    assert [i["line"] for i in lines_of(worker_api, created["id"], offset=2)] == ["two"]
    assert [i["line"] for i in lines_of(worker_api, created["id"], stream="stderr")] == ["warn"]


def test_log_is_capped_with_a_visible_marker(worker_api, make_action):
    ref = make_action("logs.loud", "local-shell-cmd", parameters=EXPOSES_CMD)

    created = execute(worker_api, ref, cmd="seq 1 2000")

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded"
    assert done["log_truncated"] is True
    lines = lines_of(worker_api, created["id"], limit=10000)
    assert lines[-1]["stream"] == "system"
    assert "truncated" in lines[-1]["line"]
    # EXECUTION_LOG_MAX_BYTES of the worker, each line counting its bytes plus an overhead
    assert sum(len(i["line"]) + LINE_OVERHEAD_BYTES for i in lines[:-1]) <= LOG_CAP
    assert lines[0]["line"] == "1"


@pytest.mark.parametrize("cmd", ["yes '' | head -n 200000", "yes a | head -n 200000"],
                         ids=["empty-lines", "short-lines"])
def test_a_flood_of_empty_or_short_lines_stops_at_the_cap(worker_api, make_action, cmd):
    ref = make_action("logs.flood", "local-shell-cmd", parameters=EXPOSES_CMD)

    created = execute(worker_api, ref, cmd=cmd)

    done = wait_until_done(worker_api, created["id"], timeout=60)
    assert done["status"] == "succeeded"
    assert done["log_truncated"] is True
    lines = lines_of(worker_api, created["id"], limit=10000)
    assert lines[-1]["stream"] == "system" and "truncated" in lines[-1]["line"]
    assert len(lines) <= LOG_CAP // LINE_OVERHEAD_BYTES + 1
    assert {i["line"] for i in lines[:-1]} == {cmd.split()[1].strip("'")}


def test_reads_return_one_bounded_page_and_the_offset_to_read_on(worker_api, make_action, go):
    ref = make_action("logs.pages", "local-shell-cmd", parameters=EXPOSES_CMD)
    created = execute(worker_api, ref, cmd=f"seq 1 25; while [ ! -f {go} ]; do sleep 0.1; done; echo last >&2")
    wait_for(lambda: len(lines_of(worker_api, created["id"])) == 25)

    def pages(**query) -> list[tuple[list[str], str]]:
        offset, seen = 0, []
        while True:
            response = worker_api.get(f"/api/v1/executions/{created['id']}/logs",
                                      query_string={"offset": offset, "limit": 10, **query})
            assert response.status_code == 200
            seen.append(([i["line"] for i in response.get_json()], response.headers["X-Next-Offset"]))
            if int(response.headers["X-Next-Offset"]) == offset:
                return seen
            offset = int(response.headers["X-Next-Offset"])

    numbers = [str(n) for n in range(1, 26)]
    assert pages() == [(numbers[:10], "10"), (numbers[10:20], "20"), (numbers[20:], "25"), ([], "25")]
    # While running (Redis), a page of another stream's lines is skipped, not searched past.
    assert pages(stream="stderr") == [([], "10"), ([], "20"), ([], "25"), ([], "25")]

    go.touch()
    assert wait_until_done(worker_api, created["id"])["status"] == "succeeded"
    assert pages() == [(numbers[:10], "10"), (numbers[10:20], "20"), ([*numbers[20:], "last"], "26"), ([], "26")]
    assert pages(stream="stderr") == [(["last"], "26"), ([], "26")]


def test_follow_streams_server_sent_events_until_the_end(worker_api, make_action):
    ref = make_action("logs.follow", "local-shell-cmd", parameters=EXPOSES_CMD)
    created = execute(worker_api, ref, cmd="echo first; sleep 1; echo second")

    response = worker_api.get(f"/api/v1/executions/{created['id']}/logs", query_string={"follow": "true"})

    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = sse_events(response)
    data = [json.loads(block.split("data: ", 1)[1]) for block in events]
    assert [d["line"] for d in data[:-1]] == ["first", "second"]
    assert events[0].startswith("id: 1\n")
    assert events[-1].startswith("event: end\n")
    assert data[-1] == {"status": "succeeded"}


def sse_events(response) -> list[str]:
    """The blocks that carry data (not comments, not the `retry` hint)."""
    return [block for block in response.get_data(as_text=True).split("\n\n") if "data: " in block]


def test_a_long_follow_ends_cleanly_and_resumes_with_last_event_id(worker_api, make_action, go, monkeypatch):
    from app.api import executions as view

    monkeypatch.setattr(view, "FOLLOW_MAX_SECONDS", 1)
    ref = make_action("logs.resume", "local-shell-cmd", parameters=EXPOSES_CMD)
    created = execute(worker_api, ref, cmd=f"echo before; while [ ! -f {go} ]; do sleep 0.1; done; echo after")
    wait_for(lambda: lines_of(worker_api, created["id"]))

    first = worker_api.get(f"/api/v1/executions/{created['id']}/logs", query_string={"follow": "true"})

    body = first.get_data(as_text=True)
    assert body.startswith("retry: ")
    assert [json.loads(b.split("data: ", 1)[1])["line"] for b in sse_events(first)] == ["before"]
    assert "event: end" not in body  # still running: the client is to reconnect, not stop
    go.touch()
    monkeypatch.setattr(view, "FOLLOW_MAX_SECONDS", 30)
    resumed = worker_api.get(f"/api/v1/executions/{created['id']}/logs", query_string={"follow": "true"},
                             headers={"Last-Event-ID": "1"})
    events = sse_events(resumed)
    assert json.loads(events[0].split("data: ", 1)[1])["line"] == "after"
    assert events[-1].startswith("event: end\n")


def follow(api, execution_id: int):
    """Open a live stream and leave it unread (it holds its slot until closed)."""
    return api.get(f"/api/v1/executions/{execution_id}/logs", query_string={"follow": "true"}, buffered=False)


def close_all(responses) -> None:
    # Last opened first: in the test client every open stream holds its pushed request context.
    for response in reversed(responses):
        response.close()


def assert_refused(response, message: str) -> None:
    assert response.status_code == 429
    body = response.get_json()
    assert body["code"] == 429 and body["status"] == "Too Many Requests" and message in body["message"]
    assert int(response.headers["Retry-After"]) >= 1


@pytest.fixture
def ended_execution(worker_api, make_action) -> int:
    created = execute(worker_api, make_action("logs.quick", "local-shell-cmd", parameters=EXPOSES_CMD), cmd="echo hi")
    wait_until_done(worker_api, created["id"])
    return created["id"]


def test_live_streams_are_capped_per_identity_and_a_closed_one_frees_its_slot(worker_api, ended_execution):
    held = [follow(worker_api, ended_execution) for _ in range(4)]  # FOLLOW_STREAMS_PER_IDENTITY
    try:
        assert [r.status_code for r in held] == [200] * 4
        assert_refused(follow(worker_api, ended_execution), "You already hold 4 live log streams")

        held.pop().close()  # the client went away before reading anything
        again = follow(worker_api, ended_execution)
        assert again.status_code == 200
        assert "event: end" in again.get_data(as_text=True)  # read to its end, which frees it too
        again.close()
        held.append(follow(worker_api, ended_execution))
        assert held[-1].status_code == 200
    finally:
        close_all(held)


def test_live_streams_are_capped_in_total_across_identities(app, worker_api, operator_api, ended_execution,
                                                             monkeypatch):
    monkeypatch.setitem(app.config, "FOLLOW_STREAMS_TOTAL", 2)
    held = [follow(worker_api, ended_execution) for _ in range(2)]
    try:
        assert [r.status_code for r in held] == [200, 200]
        assert_refused(follow(operator_api, ended_execution), "2 live log streams are open")
        held.pop().close()
        held.append(follow(operator_api, ended_execution))
        assert held[-1].status_code == 200
    finally:
        close_all(held)


def test_one_web_process_serves_no_more_live_streams_than_its_stream_threads(app, worker_api, operator_api,
                                                                            ended_execution, monkeypatch):
    monkeypatch.setitem(app.config, "FOLLOW_STREAM_THREADS", 1)
    held = follow(worker_api, ended_execution)
    try:
        assert held.status_code == 200
        assert_refused(follow(operator_api, ended_execution), "This web process already serves as many live log streams as it may (1)")
    finally:
        held.close()
    operator_stream = follow(operator_api, ended_execution)
    assert operator_stream.status_code == 200
    operator_stream.close()


def test_slots_of_a_web_process_that_died_expire_with_their_lease(app, worker_api, ended_execution, monkeypatch):
    from app.db import db
    from app.extensions import redis_client
    from app.models import Identity
    from app.services import execution_logs

    monkeypatch.setattr(execution_logs, "STREAM_LEASE_MARGIN_SECONDS", 0)
    with app.app_context():
        identity_id = db.session.scalar(select(Identity.id).where(Identity.name == "exec-admin"))
        db.session.rollback()
        for _ in range(4):
            # As another web process would, which then dies without releasing them.
            slot = execution_logs.take_stream_slot(redis_client(), identity_id, lifetime=5, per_identity=4,
                                                   total=32, per_process=32, now=time.monotonic())
            execution_logs.process_slots.give_back(slot.token)

    assert_refused(follow(worker_api, ended_execution), "You already hold 4 live log streams")
    admitted = wait_for(lambda: (r := follow(worker_api, ended_execution)).status_code == 200 and r)
    admitted.close()


def test_logs_of_unknown_execution_is_404(worker_api):
    response = worker_api.get("/api/v1/executions/999999/logs")
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_nul_characters_in_the_output_do_not_keep_the_execution_from_ending(worker_api, make_action):
    ref = make_action("logs.nul", "local-shell-cmd", parameters=EXPOSES_CMD)

    created = execute(worker_api, ref, cmd="printf 'a\\000b\\n'; echo fine")

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["stdout"] == "a\ufffdb\nfine"
    assert [i["line"] for i in lines_of(worker_api, created["id"])] == ["a\ufffdb", "fine"]
