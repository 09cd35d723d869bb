"""The runner interface: one small class per runner type, driven by run_execution.

``run_execution`` (tasks/executions.py) owns every status transition; a runner only runs
the action and reports how it ended. Runners never touch the database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.runners.isolation import Isolation

SUCCEEDED, FAILED, TIMEOUT, CANCELED = "succeeded", "failed", "timeout", "canceled"


@dataclass
class RunContext:
    execution_id: int
    action_ref: str
    pack: str
    runner_type: str
    entry_point: str
    pack_path: str | None          # absolute directory of the pack on this host, if any
    parameters: dict[str, Any]     # rendered, defaults applied, secret values resolved
    parameter_schema: dict[str, Any]  # effective schema (runner + action), for position/secret
    timeout: float                 # seconds; the runner kills the process tree after it
    emit: Callable[[str, str], None]  # emit(stream, line): "stdout" | "stderr" | "system"
    is_canceled: Callable[[], bool]   # poll it (about every 0.2 s) while running
    config: dict[str, Any] = field(default_factory=dict)  # the pack's config
    # Datastore values (full key name -> value) python actions read via action_service.
    datastore: dict[str, Any] = field(default_factory=dict)
    # Who the action's process runs as (tasks/runners/isolation.py); None: the worker's user.
    isolation: Isolation | None = None


@dataclass
class RunResult:
    status: str                    # SUCCEEDED | FAILED | TIMEOUT | CANCELED
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Runner(ABC):
    name: str = ""

    @abstractmethod
    def run(self, ctx: RunContext) -> RunResult:
        """Run the action to its end (or timeout/cancel) and say how it ended."""


REGISTRY: dict[str, type[Runner]] = {}  # filled by @register; tasks/runners/registry.py imports them all


def register(cls: type[Runner]) -> type[Runner]:
    REGISTRY[cls.name] = cls
    return cls
