"""poll_sensor: one poll of a pack sensor (beat sends it every ``poll_interval`` seconds).

One poll at a time per sensor across all workers (``at_most_one``, tasks/periodic.py). The poll runs in a child
process (sensors/runner.py); this task records what it dispatched as events and stores the
values it set, then commits; the events are enqueued after the commit. A poll that raises is logged and the
sensor is polled again at its next interval.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import shared_task
from flask import current_app
from sqlalchemy import select

from app.db import db, utcnow
from app.errors import APIError
from app.models import Event, Pack, Rule, Sensor, Trigger
from app.pack_paths import EntryPointOutside, locate_entry_point
from app.services import pack_config, run_tokens, unit_of_work
from app.services.events import record_event
from app.services.pack_reader import pack_directory
from app.services.sensors import DELETE, POLL_SENSOR, sensor_values, store_values
from sensors.runner import PollReport, SensorPoll, run_poll
from tasks.periodic import at_most_one, quiet_in_log
from tasks.runners.isolation import Isolation
from tasks.runners.python_script import datastore_api

log = logging.getLogger("patchbay.sensors")

POLL_TIMEOUT = 60.0  # seconds a poll may run before its process tree is killed
quiet_in_log(POLL_SENSOR)


@shared_task(name=POLL_SENSOR, acks_late=False)
def poll_sensor(sensor_id: int) -> dict[str, Any]:
    with at_most_one(f"sensor-poll:{sensor_id}", POLL_TIMEOUT + 30) as mine:
        if not mine:
            log.debug("sensor %s: another poll of it is running; skipped", sensor_id)
            return {"skipped": "another poll of this sensor is running"}
        poll = _prepare(sensor_id)
        db.session.rollback()  # hold no transaction open while the sensor runs
        if isinstance(poll, str):
            return {"skipped": poll}
        token = run_tokens.mint_for_sensor(poll.ref, poll.pack, POLL_TIMEOUT)  # deleted in _record
        poll.api = datastore_api(token)
        try:
            report = run_poll(poll, Isolation.from_config(current_app.config))
        except (OSError, RuntimeError) as exc:
            report = PollReport([], f"the poll could not start: {exc}")
        return _record(poll, report)


def _prepare(sensor_id: int) -> SensorPoll | str:
    sensor = db.session.get(Sensor, sensor_id)
    if sensor is None or not sensor.enabled:
        return "the sensor is gone or disabled"
    pack = db.session.get(Pack, sensor.pack_id)
    directory = pack_directory(pack.path if pack else None)
    try:
        file = locate_entry_point(directory, "sensors", sensor.entry_point) if directory else None
    except EntryPointOutside:
        file = None
    if directory is None or file is None:
        log.error("sensor %s: its entry point %s is not in its pack on this host", sensor.ref, sensor.entry_point)
        return "no sensor file on this host"
    return SensorPoll(
        sensor_id=sensor.id, ref=sensor.ref, pack=sensor.pack_name, class_name=sensor.class_name, file=str(file),
        pack_path=str(directory), poll_interval=sensor.poll_interval or 0, timeout=POLL_TIMEOUT,
        config=pack_config.runtime(pack)[0], values=sensor_values(sensor.ref),
        triggers=_triggers_of(sensor),
    )


def _triggers_of(sensor: Sensor) -> list[dict[str, Any]]:
    """What StackStorm hands ``add_trigger``: one entry per distinct use of its trigger types."""
    rows = db.session.execute(
        select(Trigger.ref, Trigger.name, Trigger.pack_name, Rule.trigger_parameters).join(Rule.trigger)
        .where(Rule.enabled.is_(True), Trigger.ref.in_(sensor.trigger_types or [])).order_by(Rule.id))
    found: dict[str, dict[str, Any]] = {}
    for ref, name, pack, parameters in rows:
        key = json.dumps([ref, parameters], sort_keys=True)
        found.setdefault(key, {"ref": ref, "type": ref, "name": name, "pack": pack, "parameters": parameters or {}})
    return list(found.values())


def _record(poll: SensorPoll, report: PollReport) -> dict[str, Any]:
    run_tokens.forget((poll.api or {}).get("token"))  # the poll is over: so is its token
    sensor = db.session.get(Sensor, poll.sensor_id)
    if sensor is None:
        unit_of_work.commit()
        return {"skipped": "the sensor was deleted during its poll"}
    events: list[Event] = []
    changes: list[tuple[str, Any]] = []
    for message in report.messages:
        if message["op"] == "dispatch":
            event = _dispatch(sensor, message)
            if event is not None:
                events.append(event)
        elif isinstance(message.get("name"), str):
            changes.append((message["name"], DELETE if message["op"] == "delete" else message.get("value")))
    for problem in store_values(sensor.ref, changes):
        log.warning("sensor %s: %s", sensor.ref, problem)
    sensor.last_polled_at = utcnow()
    unit_of_work.commit()  # the events' messages go after the commit
    if report.error:
        log.error("sensor %s: the poll failed: %s", sensor.ref, report.error)
    # An idle poll is routine: only one that dispatched something is worth an INFO line.
    log.log(logging.INFO if events else logging.DEBUG, "sensor %s polled: %d event(s)", sensor.ref, len(events))
    return {"events": [e.id for e in events], "error": report.error}


def _dispatch(sensor: Sensor, message: dict[str, Any]) -> Event | None:
    trigger = message.get("trigger")
    trigger = f"{sensor.pack_name}.{trigger}" if isinstance(trigger, str) and "." not in trigger else trigger
    if trigger not in (sensor.trigger_types or []):
        log.warning("sensor %s dispatched %r, which is not one of its trigger types; ignored", sensor.ref, trigger)
        return None
    try:
        with db.session.begin_nested():
            return record_event(trigger, message.get("payload"), source=f"sensor:{sensor.ref}")
    except APIError as exc:
        log.warning("sensor %s: an event of %s was refused: %s", sensor.ref, trigger, exc)
        return None
