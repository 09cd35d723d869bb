"""``st2common.runners.base_action.Action`` for StackStorm python actions run by Patchbay.

``self.config`` is the pack's config, ``self.logger`` logs to stderr (so its lines stream to
the execution's log), ``self.action_service`` reads and writes Patchbay's keys through the
API with this run's token (st2common/services/datastore.py). A run given no token (a worker
without PATCHBAY_API_URL) serves the values it was seeded with, and writes stay in the process.
"""

from __future__ import annotations

import abc
import logging
import sys
from typing import Any

from st2common.services.datastore import DatastoreService, from_request

__all__ = ["Action", "ActionService"]

# Filled by the python-script wrapper before the action class is instantiated.
DATASTORE: dict[str, Any] = {}
PACK = ""
API: dict[str, str] = {}  # {"url", "token"}: where and how this run reaches the keys API


class ActionService:
    """StackStorm's datastore calls, over the values the runner seeded for this run.

    ``local=True`` (StackStorm's default) scopes a name to the pack: ``<pack>:<name>``.
    """

    def __init__(self, values: dict[str, Any], pack: str, api: DatastoreService | None = None) -> None:
        self._values = values
        self._pack = pack
        self._api = api

    def _key(self, name: str, local: bool) -> str:
        return f"{self._pack}:{name}" if local else name

    def get_value(self, name: str, local: bool = True, scope: str = "system", decrypt: bool = False) -> Any:
        if self._api is not None:
            return self._api.get_value(name, local=local, scope=scope, decrypt=decrypt)
        return self._values.get(self._key(name, local))

    def set_value(self, name: str, value: Any, ttl: int | None = None, local: bool = True,
                  scope: str = "system", encrypt: bool = False) -> bool:
        if self._api is not None:
            return self._api.set_value(name, value, ttl=ttl, local=local, scope=scope, encrypt=encrypt)
        self._values[self._key(name, local)] = value
        return True

    def delete_value(self, name: str, local: bool = True, scope: str = "system") -> bool:
        if self._api is not None:
            return self._api.delete_value(name, local=local, scope=scope)
        return self._values.pop(self._key(name, local), None) is not None

    def list_values(self, local: bool = True, prefix: str | None = None) -> list[Any]:
        if self._api is not None:
            return self._api.list_values(local=local, prefix=prefix)
        start = self._key(prefix or "", local)
        return [{"name": k, "value": v} for k, v in sorted(self._values.items()) if k.startswith(start)]


def stderr_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    return logger


class Action(abc.ABC):
    """Subclass it and implement ``run(**parameters)``, as in StackStorm."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config if config is not None else {}
        self.logger = stderr_logger(f"actions.python.{type(self).__name__}")
        self.action_service = ActionService(DATASTORE, PACK, from_request(API, f"{PACK}:"))

    @abc.abstractmethod
    def run(self, **kwargs: Any) -> Any:
        """Do the work; return a result, or ``(succeeded: bool, result)``."""
