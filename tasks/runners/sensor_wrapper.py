"""Runs inside a sensor poll's child process: load the sensor class, poll once, report.

Started as a file (``python -I -u sensor_wrapper.py``), never imported by Patchbay, and it
imports nothing from Patchbay. The request arrives as JSON on stdin, with the poll's run
token for the keys API when the worker has one; dispatched events (and, without a token,
value writes) go as JSON lines to the channel file the request names (sensors/runner.py
reads it after the poll); prints and log records are ordinary log lines.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ST2COMPAT = os.path.join(HERE, "st2compat")


def instantiate(cls: type, service: Any, config: dict[str, Any], poll_interval: int | None) -> Any:
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        parameters = {}
    takes_interval = "poll_interval" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    if takes_interval:
        return cls(sensor_service=service, config=config, poll_interval=poll_interval)
    return cls(sensor_service=service, config=config)


def main() -> int:
    request = json.load(sys.stdin)
    sys.stdin.close()
    sys.stdin = open(os.devnull)
    if sys.path and os.path.abspath(sys.path[0] or ".") == HERE:
        sys.path.pop(0)  # our own directory would shadow the sensor's imports
    path = request["file"]
    sys.path[:0] = [os.path.dirname(path), *request.get("lib_paths", []), ST2COMPAT]

    from patchbay_child import hand_over, load_module
    from st2common.services.datastore import from_request
    from st2reactor.sensor.base import PollingSensor, SensorService

    api = from_request(hand_over(request.get("api")), f"{request['pack']}.{request['class_name']}:")
    with open(request["channel_path"], "a", encoding="utf-8") as channel:
        service = SensorService(channel, dict(request.get("values") or {}), request["pack"], request["class_name"], api)
        try:
            cls = getattr(load_module(path, "patchbay_sensor"), request["class_name"], None)
            if not inspect.isclass(cls) or not (issubclass(cls, PollingSensor) or callable(getattr(cls, "poll", None))):
                raise TypeError(f"{request['class_name']} is not a PollingSensor class in {os.path.basename(path)}")
            sensor = instantiate(cls, service, request.get("config") or {}, request.get("poll_interval"))
            sensor.setup()
            try:
                for trigger in request.get("triggers") or []:
                    sensor.add_trigger(trigger)
                sensor.poll()
            finally:
                sensor.cleanup()
        except SystemExit as exc:
            print(f"the sensor called sys.exit({exc.code!r})", file=sys.stderr)
            return 1
        except BaseException:  # any failure of the poll is logged by the worker
            traceback.print_exc()
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
