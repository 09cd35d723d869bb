"""Who an action's process runs as, and the private directory it gets.

Action code is untrusted: whoever may execute an action may make it run code of their
choosing. Two modes (ACTION_ISOLATION, docs/security.md):

- ``uid`` (the worker is root): each execution runs under its own uid (and a private gid of
  the same number) taken from ACTION_UIDS, locked with ``flock`` so no two executions on a
  host share one. Before a uid is handed out and after the run, every process still running
  under it is killed and what it left in the world-writable temp dirs is removed, so nothing
  of one execution survives into the next. The process starts through ``setpriv`` with no
  supplementary groups, no capabilities and ``no_new_privs`` (setuid binaries gain nothing).
- ``same-user``: the action runs as the worker's own user; the worker and its pool processes
  are non-dumpable (app/security/hardening.py), which closes their ``/proc/<pid>/environ``,
  ``mem`` and ``fd`` to the action, but concurrent executions can read each other.

Either way the action gets a private scratch directory (0700, its HOME and TMPDIR) that is
removed after the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.config import ConfigError

UID, SAME_USER = "uid", "same-user"
log = logging.getLogger("patchbay.isolation")
# Where a process of any user may leave files behind.
SHARED_TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
SETPRIV = shutil.which("setpriv")
PKILL = shutil.which("pkill")
SYSTEM_PYTHON = "/usr/bin/python3"
HERE = Path(__file__).resolve().parent


class IsolationError(RuntimeError):
    """The execution cannot be isolated as configured; the message says what to fix."""


@dataclass(frozen=True)
class Isolation:
    """The isolation settings of a worker (from ACTION_ISOLATION / ACTION_UIDS / ACTION_PYTHON)."""

    mode: str = SAME_USER
    uids: range = range(61000, 62000)
    python: str = ""

    @classmethod
    def from_config(cls, config) -> Isolation:
        mode = config.get("ACTION_ISOLATION", "auto")
        if mode == "auto":
            mode = UID if os.geteuid() == 0 else SAME_USER
        if mode == UID and os.geteuid() != 0:
            raise ConfigError("ACTION_ISOLATION is invalid: uid needs a worker running as root")
        if mode == UID and not SETPRIV:
            raise ConfigError("ACTION_ISOLATION is invalid: uid needs setpriv (util-linux) on the PATH")
        return cls(mode, config.get("ACTION_UIDS") or cls.uids, config.get("ACTION_PYTHON") or "")

    def python_interpreter(self) -> str:
        """ACTION_PYTHON, else this interpreter when the action's user may run it, else the system one."""
        if self.python:
            return self.python
        if self.mode == SAME_USER or readable_by_others(sys.executable, execute=True):
            return sys.executable
        return SYSTEM_PYTHON


@dataclass
class Sandbox:
    """One execution's process identity and private directory."""

    scratch: str                   # private directory: HOME and TMPDIR of the action
    uid: int | None = None         # None: the worker's own user
    lock: int | None = field(default=None, repr=False)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` as the action's user runs it (setpriv drops to the uid, groups and caps)."""
        if self.uid is None:
            return [SETPRIV, "--no-new-privs", "--", *argv] if SETPRIV else list(argv)
        return [SETPRIV, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *argv]

    def environment(self) -> dict[str, str]:
        env = {"HOME": self.scratch, "TMPDIR": self.scratch}
        if self.uid is not None:
            env["USER"] = env["LOGNAME"] = f"patchbay-{self.uid}"
        return env

    def private_file(self, name: str, data: bytes, mode: int = 0o400) -> str:
        """A file in the scratch directory that only the action's user may read."""
        path = os.path.join(self.scratch, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
            if self.uid is not None:
                os.fchown(fd, self.uid, self.uid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return path

    def check_readable(self, path: str, what: str) -> None:
        """Fail clearly when the action's user could not read ``path`` (a pack file)."""
        if self.uid is not None and not readable_by_others(path):
            raise IsolationError(
                f"{what} {path} is not readable by the action's user (uid {self.uid}): "
                "make PACKS_PATH readable by all users (chmod -R o+rX) and keep secrets out of it")


@contextlib.contextmanager
def sandbox(isolation: Isolation | None, execution_id: int) -> Iterator[Sandbox]:
    """A Sandbox for one run; everything it leaves is gone afterwards."""
    isolation = isolation or Isolation()
    if isolation.mode != UID:
        scratch = tempfile.mkdtemp(prefix=f"patchbay-exec-{execution_id}-")
        try:
            yield Sandbox(scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    uid, lock = _claim_uid(isolation.uids)
    scratch = ""
    try:
        # The lock file says whether the last holder finished its clean-up; a holder that
        # died (SIGKILL, OOM) or could not end everything left "dirty": sweep first, and
        # refuse the uid while anything of it survives.
        if os.pread(lock, len(CLEAN), 0) != CLEAN and not _end_everything_of(uid):
            raise IsolationError(f"processes of uid {uid} survive SIGKILL; it is not handed out")
        _mark(lock, b"dirty")
        scratch = tempfile.mkdtemp(prefix=f"patchbay-exec-{execution_id}-")
        os.chown(scratch, uid, uid)
        yield Sandbox(scratch, uid, lock)
    finally:
        # The run's own outcome stands whatever happens here: a process that outlives the
        # sweep (stuck in the kernel) keeps the uid marked dirty for the next claim.
        if _end_everything_of(uid):
            _mark(lock, CLEAN)
        else:
            log.warning("processes of uid %s survive SIGKILL; the uid stays marked for sweeping", uid)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        os.close(lock)  # releases the flock: the uid may be handed out again


CLEAN = b"clean"


def _mark(lock: int, word: bytes) -> None:
    os.ftruncate(lock, 0)
    os.pwrite(lock, word, 0)


def _lock_dir() -> Path:
    base = Path("/run") if os.path.isdir("/run") and os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    path = base / "patchbay-action-uids"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    # In a shared temp dir someone else could have made it first: use it only if it is ours.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise IsolationError(f"{path} is not a private directory of this user; remove it")
    return path


def _claim_uid(uids: range) -> tuple[int, int]:
    """Lock a free uid of the range (a random start spreads the reuse of uids)."""
    directory = _lock_dir()
    start = random.randrange(len(uids))
    for offset in range(len(uids)):
        uid = uids[(start + offset) % len(uids)]
        fd = os.open(directory / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise IsolationError(f"every uid of ACTION_UIDS ({uids.start}-{uids.stop - 1}) is in use on this host")


SWEEP_PATIENCE = 10.0  # seconds a uid's processes get to die after SIGKILL


def _end_everything_of(uid: int) -> bool:
    """Kill every process of ``uid`` and remove what it left in the shared temp dirs; say
    whether no process of it is left. A killed process in uninterruptible I/O exits only
    when the I/O ends, which a loaded host can take seconds to finish."""
    deadline = time.monotonic() + SWEEP_PATIENCE
    while True:
        if not _processes_of(uid):
            break
        if time.monotonic() > deadline:
            return False
        if PKILL:
            subprocess.run([PKILL, "-KILL", "-U", str(uid)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        else:
            for pid in _processes_of(uid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        time.sleep(0.02)
    for directory in SHARED_TEMP_DIRS:
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_uid != uid:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
    return True


def _processes_of(uid: int) -> list[int]:
    """Live (not zombie) processes whose real or effective uid is ``uid``.

    Read from /proc/<pid>/status, not the directory's owner: a process that made itself
    non-dumpable shows a root-owned /proc entry but keeps its uids there.
    """
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as file:
                status = file.read(2048)
        except OSError:
            continue  # gone meanwhile
        state = re.search(rb"^State:\s+(\S)", status, re.M)
        uids = re.search(rb"^Uid:\s+(\d+)\s+(\d+)", status, re.M)
        if uids and state and state.group(1) != b"Z" and uid in (int(uids.group(1)), int(uids.group(2))):
            found.append(int(name))
    return found


def readable_by_others(path: str, *, execute: bool = False) -> bool:
    """Whether a user who is neither the owner nor in the group may read (or run) ``path``."""
    try:
        real = Path(os.path.realpath(path))
        for parent in real.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return False
        mode = real.stat().st_mode
    except OSError:
        return False
    wanted = stat.S_IROTH | (stat.S_IXOTH if execute or stat.S_ISDIR(mode) else 0)
    return mode & wanted == wanted


_RUNTIME: dict[str, str] = {}


def runtime_copy(relative: str) -> str:
    """A copy of a file or folder of this package every user may read (the python wrapper
    and the st2common shim), for checkouts under a private directory such as /root."""
    source = HERE / relative
    if readable_by_others(str(source)):
        return str(source)
    if "dir" not in _RUNTIME:
        directory = tempfile.mkdtemp(prefix="patchbay-runtime-")
        os.chmod(directory, 0o755)
        _RUNTIME["dir"] = directory
    target = Path(_RUNTIME["dir"]) / relative
    if not target.exists():
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
        for root, dirs, files in os.walk(_RUNTIME["dir"]):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
    return str(target)


PR_SET_DUMPABLE = 4


def make_non_dumpable() -> bool:
    """Close this process's ``/proc/<pid>/environ``, ``mem`` and ``fd`` to other processes of
    its own user (the actions it starts, in ``same-user`` mode). Linux only; inherited by
    forked pool processes but reset by ``exec``, so an action's own process is unaffected."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
