"""Timers fired by a real beat and worker: interval, per-second cron, date, disable, pack
re-registration, a second beat taking over, missed ticks skipped."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

from app.engine.timers import timer_source
from tests.sensors.conftest import events_of
from tests.worker import stop_group, wait_for

EVERY_SECOND = {"unit": "seconds", "delta": 1}
PER_SECOND_PARIS = {"expression": "* * * * * *", "timezone": "Europe/Paris"}


def rule(api, name: str, trigger: str, parameters: dict) -> None:
    response = api.post("/api/v1/rules", json={"name": name, "pack": "core", "trigger": trigger,
                                               "trigger_parameters": parameters, "action": "core.noop"})
    assert response.status_code == 201, response.get_json()


def fired_at(events) -> list[datetime]:
    return [datetime.fromisoformat(e.payload["executed_at"]) for e in events]


def test_timers_fire_stop_and_survive_a_beat_dying(app, worker_api, core_pack, committed_db, beats):
    interval, cron = timer_source("core.interval_timer", EVERY_SECOND), timer_source("core.cron_timer", PER_SECOND_PARIS)
    date = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0).isoformat()
    rule(worker_api, "every_second", "core.interval_timer", EVERY_SECOND)
    rule(worker_api, "same_timer", "core.st2.IntervalTimer", EVERY_SECOND)  # shares the timer
    rule(worker_api, "paris_seconds", "core.cron_timer", PER_SECOND_PARIS)
    rule(worker_api, "once", "core.date_timer", {"date": date})
    first = beats.start("first")
    wait_for(lambda: len(events_of(committed_db, interval)) >= 3 and len(events_of(committed_db, cron)) >= 3, 30)
    once = timer_source("core.date_timer", {"date": date})
    wait_for(lambda: events_of(committed_db, once), 20)

    # A second beat stands by; the first one dies; the second takes over within seconds.
    beats.start("second")
    time.sleep(3)
    os.killpg(first.pid, signal.SIGKILL)
    killed = datetime.now(UTC)
    wait_for(lambda: any(t > killed + timedelta(seconds=1) for t in fired_at(events_of(committed_db, interval))), 15)
    ticks = fired_at(events_of(committed_db, interval))
    assert len(ticks) == len(set(ticks)), "a tick fired twice"
    assert all(t.microsecond == 0 for t in ticks)
    assert "this beat is the active one" in beats.log("second")

    # Every beat gone for a while: the missed ticks are skipped, not replayed on restart.
    gap_start, gap_end = _stop_all_and_restart(beats, committed_db, interval)
    assert [t for t in fired_at(events_of(committed_db, interval)) if gap_start < t < gap_end] == []
    assert len(events_of(committed_db, once)) == 1  # the date timer fired once, across three beats

    # Disabling the rules stops the timer within seconds, without restarting beat.
    for name in ("every_second", "same_timer", "paris_seconds"):
        assert worker_api.post(f"/api/v1/rules/core.{name}/disable").status_code == 200
    time.sleep(4)
    before = len(events_of(committed_db, interval)), len(events_of(committed_db, cron))
    time.sleep(3)
    assert (len(events_of(committed_db, interval)), len(events_of(committed_db, cron))) == before


def test_an_interval_rule_runs_an_execution_every_second_until_patched_disabled(worker_api, core_pack,
                                                                                committed_db, beats):
    rule(worker_api, "heartbeat", "core.interval_timer", EVERY_SECOND)
    beats.start()

    def executions() -> list[dict]:
        return worker_api.get("/api/v1/executions?rule=core.heartbeat&page_size=100&sort=id").json

    wait_for(lambda: len([e for e in executions() if e["status"] == "succeeded"]) >= 4, 30)
    # One execution per tick, from consecutive one-second ticks.
    details = [worker_api.get(f"/api/v1/executions/{e['id']}").json for e in executions()]
    ticks = sorted(datetime.fromisoformat(e["context"]["trigger"]["executed_at"]) for e in details)
    assert len(ticks) == len(set(ticks))
    assert [b - a for a, b in zip(ticks[:4], ticks[1:4], strict=False)] == [timedelta(seconds=1)] * 3

    assert worker_api.patch("/api/v1/rules/core.heartbeat", json={"enabled": False}).status_code == 200

    def stopped() -> bool:
        before = len(executions())
        time.sleep(3)
        return len(executions()) == before

    wait_for(stopped, 15)
    last = len(executions())
    time.sleep(2)
    assert len(executions()) == last


def _stop_all_and_restart(beats, committed_db, source: str) -> tuple[datetime, datetime]:
    for proc in beats.running():
        stop_group(proc)
    stopped = datetime.now(UTC) + timedelta(seconds=1)
    time.sleep(4)
    restarted = datetime.now(UTC)
    beats.start("third")
    wait_for(lambda: any(t > restarted for t in fired_at(events_of(committed_db, source))), 20)
    return stopped, restarted - timedelta(seconds=1)


def test_a_rule_removed_by_pack_registration_stops_its_timer(worker_pack, committed_db, core_pack, beats):
    rule_file = ("---\nname: tick\npack: ticking\ntrigger:\n  type: core.interval_timer\n"
                 "  parameters: {unit: seconds, delta: 1}\naction:\n  ref: core.noop\n")
    worker_pack("ticking", {"pack.yaml": "---\nname: ticking\nversion: 1.0.0\n", "rules/tick.yaml": rule_file})
    beats.start()
    source = timer_source("core.interval_timer", EVERY_SECOND)
    wait_for(lambda: len(events_of(committed_db, source)) >= 2, 30)
    worker_pack("ticking", {"rules/tick.yaml": None})
    time.sleep(4)
    before = len(events_of(committed_db, source))
    time.sleep(3)
    assert len(events_of(committed_db, source)) == before
