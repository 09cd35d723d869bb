"""The runner interface: one small class per runner type, driven by the execution container.

The container (tasks/container.py) owns every status transition; a runner only runs the
action and reports how it ended — or that it has not ended yet: ``RunResult.wait(on, state)``
releases the worker slot, and ``resume(ctx)`` is called (with ``ctx.state``) once something
it waits on has happened (a child ended, a person answered). Runners never touch the
database: what they need from it comes through the context (``children``, ``people``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tasks.runners.isolation import Isolation

SUCCEEDED, FAILED, TIMEOUT, CANCELED = "succeeded", "failed", "timeout", "canceled"
WAITING = "waiting"  # not finished yet: see RunResult.wait
ON_CHILDREN, ON_PERSON = "children", "inquiry"
# Runner types whose executions may wait (on children or a person) rather than run to an end.
WAITING_RUNNERS = frozenset({"orquesta", "workflow", "inquirer", "test-tree"})


@dataclass
class ChildState:
    id: int
    task_name: str | None
    status: str
    result: dict[str, Any] | None
    error: str | None
    ended: bool


class Children(Protocol):
    """Child executions of the running one (given by the container)."""

    def start(self, action_ref: str, parameters: dict[str, Any], task_name: str | None = None,
              item_index: int | None = None, delay: float | None = None) -> int:
        """Create a child execution; it is queued (after ``delay`` seconds) when the runner's
        outcome is committed. APIError if the action does not exist or refuses the parameters."""

    def states(self, ids: list[int] | None = None) -> list[ChildState]:
        """The children (only ``ids`` if given), oldest first, as the database says now."""


class People(Protocol):
    """Questions to people (inquiries), given by the container."""

    def ask(self, *, schema: dict[str, Any], route: str, users: list[str], roles: list[str],
            ttl_minutes: int | None) -> int:
        """Open an inquiry for this execution; returns its id."""

    def answer(self, inquiry_id: int) -> tuple[str, Any]:
        """(status, response): pending, responded, timed_out or canceled."""


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
    # The run token a python action's datastore calls send to PATCHBAY_API_URL (on stdin only).
    api_token: str | None = field(default=None, repr=False)
    # Who the action's process runs as (tasks/runners/isolation.py); None: the worker's user.
    isolation: Isolation | None = None
    # For runners that wait: their own state from the last wait, and what they wait on.
    state: dict[str, Any] = field(default_factory=dict)
    children: Children | None = None
    people: People | None = None
    canceling: bool = False  # a cancel was asked: start nothing new
    pausing: bool = False    # a pause was asked (a workflow): start nothing new until resumed
    # Datastore lookups for expressions evaluated by the runner itself (a workflow's st2kv()).
    kv: Any = None


@dataclass
class RunResult:
    status: str                    # SUCCEEDED | FAILED | TIMEOUT | CANCELED | WAITING
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    waiting_on: str | None = None  # with WAITING: ON_CHILDREN or ON_PERSON
    state: dict[str, Any] | None = None  # with WAITING: given back as ctx.state on resume

    @classmethod
    def wait(cls, on: str, state: dict[str, Any] | None = None) -> RunResult:
        """Not finished: release the worker until something ``on`` waits for happens."""
        return cls(WAITING, waiting_on=on, state=state or {})


class Runner(ABC):
    name: str = ""

    @abstractmethod
    def run(self, ctx: RunContext) -> RunResult:
        """Run the action to its end (or timeout/cancel) and say how it ended, or wait."""

    def resume(self, ctx: RunContext) -> RunResult:
        """Go on after a wait (``ctx.state`` is what ``RunResult.wait`` kept)."""
        return RunResult(FAILED, error=f"The {self.name} runner does not wait, so it cannot be resumed.")


REGISTRY: dict[str, type[Runner]] = {}  # filled by @register; tasks/runners/registry.py imports them all


def register(cls: type[Runner]) -> type[Runner]:
    REGISTRY[cls.name] = cls
    return cls
