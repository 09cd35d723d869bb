"""Kill a child's whole process tree, including processes that left its session."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psutil

GRACE = 2.0                # seconds between SIGTERM and SIGKILL
MARKER = "PATCHBAY_RUN_TOKEN"  # environment variable holding a run's random token


def kill_process_tree(proc: subprocess.Popen, token: str, grace: float = GRACE) -> int:
    """SIGTERM the group and every related process, wait ``grace``, SIGKILL what is left.

    The child is reaped only at the end, so its process group id cannot be reused meanwhile.
    Returns how many processes were found.
    """
    pgid = proc.pid  # start_new_session made the child the leader of its own group
    found = _related(proc.pid, pgid, token)
    _signal_all(pgid, found, signal.SIGTERM)
    alive = _wait_gone(found, grace)
    for _ in range(3):  # a process may fork between our scan and the signal: scan again
        alive |= _related(proc.pid, pgid, token)
        if not alive:
            break
        found |= alive
        _signal_all(pgid, alive, signal.SIGKILL)
        alive = _wait_gone(alive, 1.0)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    return len(found)


def _related(root: int, pgid: int, token: str) -> set[psutil.Process]:
    """The root and its descendants, members of its group, and processes carrying the marker."""
    related: set[psutil.Process] = set()
    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(root)
        related.add(parent)
        related.update(parent.children(recursive=True))
    for candidate in psutil.process_iter():
        try:
            if os.getpgid(candidate.pid) == pgid or candidate.environ().get(MARKER) == token:
                related.add(candidate)
        except (psutil.Error, OSError):
            continue  # gone, or another user's process: not ours
    return {p for p in related if _alive(p)}


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_all(pgid: int, processes: set[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


def _wait_gone(processes: set[psutil.Process], timeout: float) -> set[psutil.Process]:
    end = time.monotonic() + timeout
    alive = {p for p in processes if _alive(p)}
    while alive and time.monotonic() < end:
        time.sleep(0.05)
        alive = {p for p in alive if _alive(p)}
    return alive
