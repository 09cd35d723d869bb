"""Run a child process to its end: own session, output streamed line by line.

Celery's ``revoke(terminate=True)`` kills the pool process but not what it started, so
every child runs in a new session (its own process group) and carries a random token in
its environment; on timeout or cancel ``process_tree`` kills the group, the child's
descendants and every process carrying the token (those that escaped with ``setsid``).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tasks.runners.base import CANCELED, TIMEOUT, RunContext
from tasks.runners.common import child_environment, effective_timeout
from tasks.runners.isolation import Sandbox
from tasks.runners.process_tree import MARKER, kill_process_tree

OUTPUT_CAP = 64 * 1024     # characters of stdout/stderr kept in the result (the log has all)
MAX_LINE = 64 * 1024       # a longer line without "\n" is emitted in pieces of this size
POLL = 0.2                 # seconds between is_canceled() polls
PIPE_GRACE = 1.0           # seconds we keep reading after the child exits (background holders)


@dataclass
class ProcessOutcome:
    status: str | None       # TIMEOUT or CANCELED when we ended it, None when it exited
    return_code: int | None
    stdout: str              # the first OUTPUT_CAP characters
    stderr: str
    truncated: bool          # whether stdout or stderr went past OUTPUT_CAP


class _Stream:
    """One output pipe: decodes bytes as UTF-8 (bad bytes replaced) and cuts it into lines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.kept: list[str] = []
        self.kept_size = 0
        self.truncated = False

    def feed(self, data: bytes, final: bool = False) -> list[str]:
        text = self.decoder.decode(data, final=final)
        self._keep(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        while len(self.pending) > MAX_LINE:
            lines.append(self.pending[:MAX_LINE])
            self.pending = self.pending[MAX_LINE:]
        if final and self.pending:
            lines.append(self.pending)
            self.pending = ""
        return [line[:-1] if line.endswith("\r") else line for line in lines]

    def _keep(self, text: str) -> None:
        room = OUTPUT_CAP - self.kept_size
        if len(text) > room:
            self.truncated = True
            text = text[:max(room, 0)]
        if text:
            self.kept.append(text)
            self.kept_size += len(text)

    @property
    def text(self) -> str:
        return "".join(self.kept)


def run_process(argv: Sequence[str], ctx: RunContext, box: Sandbox, *, cwd: str | None = None,
                env: Mapping[str, str] | None = None, stdin_data: bytes | None = None) -> ProcessOutcome:
    """Run ``argv`` as the sandbox's user to its end, emitting output lines as they come;
    enforce timeout and cancel.

    Raises OSError when the process cannot be started (missing program or cwd).
    """
    token = uuid.uuid4().hex
    child_env = dict(env if env is not None else child_environment(ctx))
    child_env.update(box.environment())
    child_env[MARKER] = token
    proc = subprocess.Popen(
        box.command(list(argv)), cwd=cwd or box.scratch, env=child_env, start_new_session=True,
        close_fds=True, umask=0o077,
        stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    guard = _start_guard(proc.pid, box.uid)
    try:
        return _follow(proc, token, ctx, stdin_data)
    finally:
        _stop_guard(guard)


def _follow(proc: subprocess.Popen, token: str, ctx: RunContext, stdin_data: bytes | None) -> ProcessOutcome:
    out, err = _Stream("stdout"), _Stream("stderr")
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}  # type: ignore[union-attr]
    status: str | None = None
    try:
        status = _pump(proc, ctx, streams, stdin_data)
    except BaseException:
        kill_process_tree(proc, token)
        raise
    finally:
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    if status is not None:
        killed = kill_process_tree(proc, token)
        why = f"timed out after {effective_timeout(ctx):g} s" if status == TIMEOUT else "canceled"
        ctx.emit("system", f"{why}: killed the process tree ({killed} process(es))")
    return_code = proc.wait()
    return ProcessOutcome(status, return_code, out.text, err.text, out.truncated or err.truncated)


# If this pool process dies (SIGKILL, the OOM killer, Celery's hard time limit, the whole
# worker killed), nobody is left to kill the action's processes: they would run on, orphaned,
# while the sweeper reports the execution abandoned (and a retry may start a second copy).
# The guard, a tiny shell in its own session, reads a pipe whose write end only this process
# holds: "done" means we ended normally; EOF without it means we died, so it kills the group.
# With its own uid, every process of that uid is the action's: the guard kills them all too.
GUARD_SCRIPT = (
    'read -r word; [ "$word" = done ] && exit 0; '
    'kill -TERM -"$1" 2>/dev/null; sleep 2; kill -KILL -"$1" 2>/dev/null; '
    '[ -n "$2" ] && pkill -KILL -U "$2" 2>/dev/null; exit 0'
)


def _start_guard(pgid: int, uid: int | None) -> tuple[subprocess.Popen, int] | None:
    read_end, write_end = os.pipe()
    try:
        guard = subprocess.Popen(
            ["/bin/sh", "-c", GUARD_SCRIPT, "patchbay-guard", str(pgid), "" if uid is None else str(uid)],
            stdin=read_end,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            close_fds=True, env={"PATH": os.defpath},
        )
    except OSError:
        os.close(write_end)
        return None  # no guard: the action still runs, as it did before guards existed
    finally:
        os.close(read_end)
    return guard, write_end


def _stop_guard(guard: tuple[subprocess.Popen, int] | None) -> None:
    if guard is None:
        return
    process, write_end = guard
    with contextlib.suppress(OSError):
        os.write(write_end, b"done\n")
    os.close(write_end)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def _pump(proc: subprocess.Popen, ctx: RunContext, streams: dict[int, _Stream],
          stdin_data: bytes | None) -> str | None:
    """Move bytes until the child exits and its pipes close; say TIMEOUT/CANCELED if we stop it."""
    deadline = time.monotonic() + effective_timeout(ctx)
    selector = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    to_write = memoryview(stdin_data or b"")
    stdin_fd = proc.stdin.fileno() if proc.stdin is not None else -1
    if proc.stdin is not None:
        os.set_blocking(stdin_fd, False)
        if to_write:
            selector.register(stdin_fd, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
    next_poll = 0.0
    exited_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return TIMEOUT
            if now >= next_poll:
                if ctx.is_canceled():
                    return CANCELED
                next_poll = now + POLL
            if proc.poll() is not None:
                if not streams:
                    return None
                exited_at = exited_at or now
                if now - exited_at > PIPE_GRACE:
                    # A background process still holds the pipes; the action itself is done.
                    ctx.emit("system", "the process exited; output of processes it left running is not collected")
                    for stream in streams.values():
                        _emit(ctx, stream, stream.feed(b"", final=True))
                    return None
            wait = max(0.0, min(POLL, deadline - now, next_poll - now))
            if not selector.get_map():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(wait)
                continue
            for key, _ in selector.select(wait):
                if key.fd == stdin_fd:
                    to_write = _write_some(proc, selector, to_write)
                    continue
                stream = streams[key.fd]
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                _emit(ctx, stream, stream.feed(data, final=not data))
                if not data:
                    selector.unregister(key.fd)
                    del streams[key.fd]
    finally:
        selector.close()


def _write_some(proc: subprocess.Popen, selector: selectors.BaseSelector, data: memoryview) -> memoryview:
    assert proc.stdin is not None
    try:
        written = os.write(proc.stdin.fileno(), data[:65536])
    except BlockingIOError:
        return data
    except BrokenPipeError:  # the child does not read its stdin; that is its business
        written = len(data)
    data = data[written:]
    if not data:
        selector.unregister(proc.stdin.fileno())
        proc.stdin.close()
    return data


def _emit(ctx: RunContext, stream: _Stream, lines: list[str]) -> None:
    for line in lines:
        ctx.emit(stream.name, line)


