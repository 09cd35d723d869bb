"""A StackStorm polling sensor from a pack, polled by a real beat and worker."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.errors import ValidationError
from app.models import SensorValue
from tests.sensors.conftest import events_of
from tests.worker import wait_for, wait_until_done

COUNTER = '''
from st2reactor.sensor.base import PollingSensor


class Counter(PollingSensor):
    def setup(self):
        self.log = self.sensor_service.get_logger("counter")

    def poll(self):
        count = (self.sensor_service.get_value("count") or 0) + 1
        self.sensor_service.set_value("count", count)
        self.sensor_service.dispatch("feeds.tick", {"count": count})
        if count == 2:
            raise RuntimeError("the feed is down")

    def cleanup(self):
        pass
'''
SENSOR_FILES = {
    "pack.yaml": "---\nname: feeds\nversion: 1.0.0\n",
    "sensors/counter.yaml": ("---\nclass_name: Counter\nentry_point: counter.py\npoll_interval: 1\n"
                             "trigger_types:\n  - name: tick\n    payload_schema: {type: object}\n"),
    "sensors/counter.py": COUNTER,
}
FILES = {
    **SENSOR_FILES,
    "rules/on_third.yaml": ("---\nname: on_third\npack: feeds\ntrigger: {type: feeds.tick}\n"
                            "criteria:\n  trigger.count: {type: equals, pattern: 3}\naction: {ref: core.noop}\n"),
}


def test_a_polling_sensor_dispatches_with_a_cursor_survives_a_raising_poll_and_fires_a_rule(
        worker_api, core_pack, worker_pack, committed_db, beats):
    worker_pack("feeds", FILES)
    beats.start()
    source = "sensor:feeds.Counter"
    wait_for(lambda: len(events_of(committed_db, source)) >= 4, 40)
    counts = [e.payload["count"] for e in events_of(committed_db, source)]
    assert counts[:4] == [1, 2, 3, 4]  # each poll a new process: the cursor lives in PostgreSQL
    stored = committed_db.scalar(select(SensorValue.value).where(SensorValue.name == "feeds.Counter:count"))
    assert stored >= 4
    # The third event fires the pack's rule: a succeeded execution, back to that event.
    [fired] = wait_for(lambda: worker_api.get("/api/v1/executions?rule=feeds.on_third").json or None)
    done = wait_until_done(worker_api, fired["id"])
    assert done["status"] == "succeeded"
    third = next(e for e in events_of(committed_db, source) if e.payload["count"] == 3)
    assert done["context"]["event"]["id"] == third.id

    assert worker_api.post("/api/v1/sensors/feeds.Counter/disable").status_code == 200
    time.sleep(4)
    before = len(events_of(committed_db, source))
    time.sleep(3)
    assert len(events_of(committed_db, source)) == before


def test_a_sensor_with_a_run_loop_is_refused_at_registration(worker_pack):
    loop = COUNTER.replace("PollingSensor", "Sensor").replace("def poll(self):", "def run(self):")
    with pytest.raises(ValidationError) as refused:
        worker_pack("streams", {**SENSOR_FILES, "pack.yaml": "---\nname: streams\nversion: 1.0.0\n",
                                "sensors/counter.py": loop})
    problems = refused.value.errors["sensors/counter.yaml"]["class_name"]
    assert "run() loop" in " ".join(problems)
