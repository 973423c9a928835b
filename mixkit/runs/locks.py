"""Run-directory locks: one process trains a run at a time, and a dead owner's lock is cleared."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from mixkit.runs.store import LOCK


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def try_lock(d: Path) -> bool:
    """Take the run directory's lock file, clearing it first if its owner on this host is dead."""
    d.mkdir(parents=True, exist_ok=True)
    lock = d / LOCK
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            pid_text, host = lock.read_text().split()
            stale = host == socket.gethostname() and not _pid_alive(int(pid_text))
        except (OSError, ValueError):
            # Unreadable or half-written: stale only once it is clearly not being written right now.
            stale = time.time() - _mtime(lock) > 10
        if stale:
            lock.unlink(missing_ok=True)
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()} {socket.gethostname()}\n")
    return True


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def unlock(d: Path) -> None:
    lock = d / LOCK
    try:
        if lock.read_text().split()[0] == str(os.getpid()):
            lock.unlink()
    except (OSError, IndexError):
        pass
