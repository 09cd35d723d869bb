"""Fixtures for runner tests: a RunContext builder, a log recorder, and process checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from tasks.runners.base import RunContext
from tasks.runners.isolation import Isolation


class Log:
    """Collects emit(stream, line) calls; ``on`` runs a callback when a line arrives."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.hooks: dict[str, Callable[[], None]] = {}

    def emit(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))
        if line in self.hooks:
            self.hooks.pop(line)()

    def on(self, line: str, callback: Callable[[], None]) -> None:
        self.hooks[line] = callback

    def of(self, stream: str) -> list[str]:
        return [line for s, line in self.lines if s == stream]

    def values(self, prefix: str) -> list[str]:
        return [line[len(prefix):] for _, line in self.lines if line.startswith(prefix)]


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def make_ctx(log: Log, tmp_path) -> Callable[..., RunContext]:
    def make(runner_type: str, parameters: dict[str, Any] | None = None, *, entry_point: str = "",
             schema: dict[str, Any] | None = None, timeout: float = 30, canceled: Callable[[], bool] | None = None,
             pack_path: str | None = None, config: dict[str, Any] | None = None,
             datastore: dict[str, Any] | None = None, isolation: Isolation | None = None) -> RunContext:
        return RunContext(
            execution_id=42, action_ref="acme.thing", pack="acme", runner_type=runner_type,
            entry_point=entry_point, pack_path=pack_path if pack_path is not None else str(tmp_path / "pack"),
            parameters=parameters or {}, parameter_schema=schema or {}, timeout=timeout,
            emit=log.emit, is_canceled=canceled or (lambda: False), config=config or {},
            datastore=datastore or {}, isolation=isolation,
        )

    (tmp_path / "pack").mkdir()
    return make


def gone(pids: list[int], within: float = 10.0) -> bool:
    """Whether every pid stops running (zombies count as gone) before ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not any(_running(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
