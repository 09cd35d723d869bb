"""Execution logs: readable while running (Redis) and after (PostgreSQL), capped, followable."""

from __future__ import annotations

import json

from tests.executions.conftest import wait_for, wait_until_done


def execute(api, ref: str, **parameters) -> dict:
    response = api.post(f"/api/v1/actions/{ref}/execute", json={"parameters": parameters})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def lines_of(api, execution_id: int, **query) -> list[dict]:
    response = api.get(f"/api/v1/executions/{execution_id}/logs", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_logs_while_running_and_after_a_redis_flush(app, worker_api, make_action, tmp_path):
    go = tmp_path / "go"
    ref = make_action("logs.wait", "local-shell-cmd")
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
    ref = make_action("logs.loud", "local-shell-cmd")

    created = execute(worker_api, ref, cmd="seq 1 2000")

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded"
    assert done["log_truncated"] is True
    lines = lines_of(worker_api, created["id"], limit=10000)
    assert lines[-1]["stream"] == "system"
    assert "truncated" in lines[-1]["line"]
    assert sum(len(i["line"]) for i in lines[:-1]) <= 2000  # EXECUTION_LOG_MAX_BYTES of the worker
    assert lines[0]["line"] == "1"


def test_follow_streams_server_sent_events_until_the_end(worker_api, make_action):
    ref = make_action("logs.follow", "local-shell-cmd")
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


def test_a_long_follow_ends_cleanly_and_resumes_with_last_event_id(worker_api, make_action, tmp_path, monkeypatch):
    from app.api import executions as view

    monkeypatch.setattr(view, "FOLLOW_MAX_SECONDS", 1)
    go = tmp_path / "go"
    ref = make_action("logs.resume", "local-shell-cmd")
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


def test_logs_of_unknown_execution_is_404(worker_api):
    response = worker_api.get("/api/v1/executions/999999/logs")
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_nul_characters_in_the_output_do_not_keep_the_execution_from_ending(worker_api, make_action):
    ref = make_action("logs.nul", "local-shell-cmd")

    created = execute(worker_api, ref, cmd="printf 'a\\000b\\n'; echo fine")

    done = wait_until_done(worker_api, created["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["stdout"] == "a\ufffdb\nfine\n"
    assert [i["line"] for i in lines_of(worker_api, created["id"])] == ["a\ufffdb", "fine"]
