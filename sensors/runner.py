"""Run one poll of a pack sensor in a child process, under the runners' process controls.

Sensor code is untrusted like action code: the child runs through ``sandbox`` (its own uid
when the worker is root, a private scratch directory) and ``run_process`` (own session,
timeout, whole tree killed). It gets its request on stdin and writes JSON lines to a channel
file in its scratch directory; this module never touches the database.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass, field
from typing import Any

from app.engine.parameters import MASK
from tasks.runners.base import RunContext
from tasks.runners.common import PASSED_THROUGH
from tasks.runners.isolation import Isolation, runtime_copy, sandbox
from tasks.runners.process import run_process

log = logging.getLogger("patchbay.sensors")

CHANNEL_CAP = 16 * 1024 * 1024  # bytes of dispatched events and value writes read per poll
MAX_MESSAGES = 1000             # messages taken from one poll


@dataclass
class SensorPoll:
    """Everything one poll needs, read from the database by the task beforehand."""

    sensor_id: int
    ref: str
    pack: str
    class_name: str
    file: str                   # the sensor's Python file (absolute)
    pack_path: str
    poll_interval: int
    timeout: float
    config: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    # {"url", "token"}: the poll's way to the keys API (tasks/sensors.py mints the token).
    api: dict[str, str] | None = field(default=None, repr=False)


@dataclass
class PollReport:
    messages: list[dict[str, Any]]
    error: str | None             # why the poll failed, None when it succeeded


def run_poll(poll: SensorPoll, isolation: Isolation | None = None) -> PollReport:
    """Poll once; what the sensor dispatched and stored, even when it failed afterwards."""
    lib = os.path.join(poll.pack_path, "sensors", "lib")
    lines: list[str] = []

    token = (poll.api or {}).get("token")

    def emit(stream: str, line: str) -> None:
        line = line.replace(token, MASK) if token else line  # the poll's token never reaches a log
        log.info("sensor %s %s: %s", poll.ref, stream, line)
        if stream == "stderr":
            lines[:] = [*lines[-19:], line]

    ctx = RunContext(
        execution_id=poll.sensor_id, action_ref=poll.ref, pack=poll.pack, runner_type="python-script",
        entry_point=poll.file, pack_path=poll.pack_path, parameters={}, parameter_schema={},
        timeout=poll.timeout, emit=emit, is_canceled=lambda: False, config=poll.config, isolation=isolation,
    )
    isolation = isolation or Isolation()
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env["PATCHBAY_SENSOR_REF"] = poll.ref
    with sandbox(isolation, poll.sensor_id) as box:
        box.check_readable(poll.file, "The sensor file")
        runtime_copy("st2compat")  # the wrapper finds it beside itself
        channel = os.path.join(box.scratch, "channel.jsonl")
        request = {
            "file": poll.file, "class_name": poll.class_name, "pack": poll.pack, "config": poll.config,
            "values": poll.values, "triggers": poll.triggers, "poll_interval": poll.poll_interval,
            "lib_paths": [lib] if os.path.isdir(lib) else [], "channel_path": channel, "api": poll.api,
        }
        outcome = run_process(
            [isolation.python_interpreter(), "-I", "-X", "utf8", "-u", runtime_copy("sensor_wrapper.py")],
            ctx, box, cwd=os.path.dirname(poll.file), env=env,
            stdin_data=json.dumps(request, default=str).encode(),
        )
        messages = read_channel(channel)
    if outcome.status is not None:
        return PollReport(messages, f"the poll did not finish within {poll.timeout:g} s; its process tree was killed")
    if outcome.return_code != 0:
        return PollReport(messages, "\n".join(lines[-5:]) or f"the poll exited with code {outcome.return_code}")
    return PollReport(messages, None)


def read_channel(path: str) -> list[dict[str, Any]]:
    """The complete JSON lines of the channel file (a regular file only: the sensor's user owns
    the directory and could have swapped it for a link or a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    with open(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return []
        data = file.read(CHANNEL_CAP)
    messages = []
    for line in data.split(b"\n")[:-1]:  # the last piece is empty or a line cut short
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("op") in ("dispatch", "set", "delete"):
            messages.append(message)
        if len(messages) >= MAX_MESSAGES:
            log.warning("a sensor sent more than %d messages in one poll; the rest were dropped", MAX_MESSAGES)
            break
    return messages
