"""``st2reactor.sensor.base``: StackStorm's ``Sensor`` and ``PollingSensor`` for Patchbay.

Patchbay runs a polling sensor one poll at a time, each in a fresh child process:
``setup()``, ``add_trigger()`` for each rule on its trigger types, ``poll()``, ``cleanup()``.
What lasts between polls is what the sensor stores with ``set_value`` (its cursor). Events
go to Patchbay through a file of JSON lines read after the poll. Values are Patchbay's keys,
read and written through the API with the poll's token (st2common/services/datastore.py);
a poll given no token (a worker without PATCHBAY_API_URL) keeps them in the sensor's own
store instead, seeded from the request and written through the same file. The child holds
no database or Vault credentials either way.
"""

from __future__ import annotations

import abc
import json
import logging
from typing import IO, Any

from st2common.runners.base_action import stderr_logger
from st2common.services.datastore import DatastoreService

__all__ = ["PollingSensor", "Sensor", "SensorService"]


class SensorService:
    """StackStorm's ``sensor_service``: dispatch, datastore values, loggers."""

    def __init__(self, channel: IO[str], values: dict[str, Any], pack: str, class_name: str,
                 api: DatastoreService | None = None) -> None:
        self._channel = channel
        self._values = values
        self._prefix = f"{pack}.{class_name}:"  # StackStorm's: local to the pack and class
        self._api = api

    def _send(self, message: dict[str, Any]) -> None:
        self._channel.write(json.dumps(message, default=str) + "\n")
        self._channel.flush()

    def _key(self, name: str, local: bool) -> str:
        return f"{self._prefix}{name}" if local else name

    def get_logger(self, name: str) -> logging.Logger:
        return stderr_logger(name)

    def dispatch(self, trigger: str, payload: Any = None, trace_tag: str | None = None) -> None:
        """Emit an event of ``trigger`` (``<pack>.<name>``, one of the sensor's trigger types)."""
        self._send({"op": "dispatch", "trigger": trigger, "payload": payload if payload is not None else {}})

    def dispatch_with_context(self, trigger: str, payload: Any = None, trace_context: Any = None) -> None:
        self.dispatch(trigger, payload)

    def get_value(self, name: str, local: bool = True, scope: str = "system", decrypt: bool = False) -> Any:
        if self._api is not None:
            return self._api.get_value(name, local=local, scope=scope, decrypt=decrypt)
        return self._values.get(self._key(name, local))

    def set_value(self, name: str, value: Any = None, ttl: int | None = None, local: bool = True,
                  scope: str = "system", encrypt: bool = False) -> bool:
        if self._api is not None:
            return self._api.set_value(name, value, ttl=ttl, local=local, scope=scope, encrypt=encrypt)
        key = self._key(name, local)
        self._values[key] = value
        self._send({"op": "set", "name": key, "value": value})
        return True

    def delete_value(self, name: str, local: bool = True, scope: str = "system") -> bool:
        if self._api is not None:
            return self._api.delete_value(name, local=local, scope=scope)
        key = self._key(name, local)
        existed = self._values.pop(key, None) is not None
        self._send({"op": "delete", "name": key})
        return existed

    def list_values(self, local: bool = True, prefix: str | None = None) -> list[Any]:
        if self._api is not None:
            return self._api.list_values(local=local, prefix=prefix)
        start = self._key(prefix or "", local)
        return [{"name": k, "value": v} for k, v in sorted(self._values.items()) if k.startswith(start)]


class Sensor(abc.ABC):
    """A sensor with its own ``run()`` loop. Patchbay does not run these: use PollingSensor."""

    def __init__(self, sensor_service: SensorService, config: dict[str, Any] | None = None) -> None:
        self._sensor_service = self.sensor_service = sensor_service
        self._config = self.config = config if config is not None else {}

    @abc.abstractmethod
    def setup(self) -> None:
        """Prepare (clients, credentials from ``self.config``)."""

    @abc.abstractmethod
    def run(self) -> None:
        """Do the work."""

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Release what ``setup`` took."""

    def add_trigger(self, trigger: dict[str, Any]) -> None:  # noqa: B027 - optional, as sensors may ignore it
        """A rule uses one of the sensor's trigger types with these parameters."""

    def update_trigger(self, trigger: dict[str, Any]) -> None:  # noqa: B027 - optional, as sensors may ignore it
        """Such a rule changed."""

    def remove_trigger(self, trigger: dict[str, Any]) -> None:  # noqa: B027 - optional, as sensors may ignore it
        """Such a rule went away."""


class PollingSensor(Sensor):
    """Implement ``poll()``; Patchbay calls it every ``poll_interval`` seconds."""

    def __init__(self, sensor_service: SensorService, config: dict[str, Any] | None = None,
                 poll_interval: int | None = 5) -> None:
        super().__init__(sensor_service=sensor_service, config=config)
        self._poll_interval = poll_interval

    @abc.abstractmethod
    def poll(self) -> None:
        """Look at the outside world once; ``dispatch`` what happened."""

    def run(self) -> None:
        self.poll()  # one pass: Patchbay schedules the next poll itself

    def get_poll_interval(self) -> int | None:
        return self._poll_interval

    def set_poll_interval(self, poll_interval: int) -> None:
        self._poll_interval = poll_interval  # the sensor's registered poll_interval decides
