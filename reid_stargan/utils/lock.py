"""A lock file that keeps two runs from writing one folder at the same time.

    with FolderLock(out_dir / ".generate.lock", "generate_camstyle"):
        ...  # a second run into out_dir is refused, naming pid, host and start time of this one

The file is created with O_CREAT | O_EXCL (atomic on local file systems and NFSv3+) and holds
`{"tool", "pid", "host", "started"}`. It is removed when the block ends, also on an error. A lock
left by a killed run is stale when its pid is dead on this host: it is removed with a note and
taken. A lock of another host cannot be checked and is never taken over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

# A lock file that cannot be read (a writer killed between create and write) counts as stale
# once it is this old; younger, it may be a run that is writing it right now.
_UNREADABLE_GRACE_S = 60.0


class LockHeldError(OSError):
    """Another run holds the lock; the message names it and says what to do."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def read_lock(path: str | os.PathLike) -> dict | None:
    """The holder recorded in a lock file, or None when it is missing or unreadable."""
    try:
        holder = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def describe_holder(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return f"{holder.get('tool', '?')} pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {when}"


class FolderLock:
    """Hold `path` as a lock file for the duration of a `with` block (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, tool: str, note=None):
        self.path = Path(path)
        self.tool = tool
        self.note = note or (lambda msg: print(f"note: {msg}", file=sys.stderr))
        self.holder: dict | None = None

    def acquire(self) -> FolderLock:
        for _ in range(3):  # a stale lock is removed, then creation is tried again
            holder = {"tool": self.tool, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                if not self._remove_if_stale():
                    other = read_lock(self.path)
                    who = describe_holder(other) if other else "a run whose lock file cannot be read yet"
                    raise LockHeldError(
                        f"{self.path.parent} is being written by another run ({who}; lock file {self.path}); "
                        f"wait for it to finish, or, if that run is dead, remove {self.path}") from None
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(holder, f)
            self.holder = holder
            return self
        raise LockHeldError(f"{self.path}: could not take the lock (it keeps reappearing); another run is starting")

    def _remove_if_stale(self) -> bool:
        holder = read_lock(self.path)
        if holder is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return True  # released meanwhile: try again
            if age < _UNREADABLE_GRACE_S:
                return False
            reason = f"unreadable and {age:.0f} s old"
        elif holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) \
                and not _pid_alive(holder["pid"]):
            reason = f"{describe_holder(holder)}: that process is gone"
        else:
            return False
        self.path.unlink(missing_ok=True)
        self.note(f"removed stale lock {self.path} ({reason})")
        return True

    def release(self) -> None:
        if self.holder is None:
            return
        # Only our own lock is removed (one a user deleted and another run re-took is left alone).
        if read_lock(self.path) == self.holder:
            self.path.unlink(missing_ok=True)
        self.holder = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
