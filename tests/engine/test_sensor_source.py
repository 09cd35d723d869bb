"""A non-polling sensor is refused from its source, never imported (pure)."""

from __future__ import annotations

from app.engine.sensor_source import polling_sensor_problem

POLLING = '''
from st2reactor.sensor.base import PollingSensor
class Base(PollingSensor):
    pass
class Feed(Base):
    def setup(self): pass
'''
LOOP = '''
from st2reactor.sensor import base
class Stream(base.Sensor):
    def run(self):
        while True: pass
'''


def test_polling_sensors_pass_and_run_loops_are_refused_with_the_reason():
    assert polling_sensor_problem(POLLING, "Feed") is None
    problem = polling_sensor_problem(LOOP, "Stream")
    assert "run() loop" in problem and "PollingSensor" in problem and "poll()" in problem
    assert "no class 'Missing'" in polling_sensor_problem(POLLING, "Missing")
    assert "not valid Python" in polling_sensor_problem("class (", "X")
