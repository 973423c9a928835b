"""Run-directory locks: one process trains a run at a time, and a dead owner's lock frees itself.

A run's `lock` file is held with `flock` for as long as its run trains. The kernel (or, on NFS, the
lock server) drops the lock when its holder's process dies, however it dies, so there is no
"is the owner still alive?" decision to race on: taking a lock is one atomic `flock` call, and a
lock left by a killed sweep is simply free. The text in the file (PID and host) is for people.

Releasing unlinks the file while still holding it, so finished runs leave no lock behind. A
process that opened the file just before that unlink can then win `flock` on the unlinked file;
`_still_linked` catches this (the locked inode must be the one at the path) and it tries again.

Where this holds: local filesystems (ext4, xfs, btrfs, tmpfs...), and NFSv3 (with lockd) or NFSv4
from Linux clients, which send `flock` to the server as a whole-file lock, so processes on different
machines exclude each other; a crashed machine's lock is freed when its lease expires (NFSv4: about
90 s). Lustre needs the `flock` mount option (with `localflock`, or on NFS mounted `nolock`, locks
only exclude processes on the same machine). Where locks are machine-local, two machines can train
the same run at once; each still writes its files atomically, DONE last, and training is
deterministic, so that costs duplicate work, never a torn or mixed run.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from mixkit.runs.store import LOCK


class RunLock:
    """A held run lock; `release()` (or leaving a `with` block) frees it and removes the file."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            # Unlink before unlocking: whoever opened this file meanwhile sees it unlinked and retries.
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_lock(d: Path, wait: bool = False) -> RunLock | None:
    """Take the lock of run directory `d`: a RunLock, or None when another live process holds it.

    `wait=True` blocks until the holder finishes or dies instead of returning None. OSErrors (no
    space for the lock file, no permission, a filesystem without locks) propagate.
    """
    d.mkdir(parents=True, exist_ok=True)
    path = d / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:  # ENOLCK (NFS without lockd), ENOSYS/EOPNOTSUPP (Lustre without -o flock)
            os.close(fd)
            raise OSError(exc.errno, f"cannot lock {path}: {exc.strerror} (the run store's filesystem must "
                          "support flock)") from exc
        except BaseException:
            os.close(fd)
            raise
        if _still_linked(fd, path):
            _describe_holder(fd)
            return RunLock(path, fd)
        os.close(fd)  # we locked a file its last holder had already removed: take the new one


def _still_linked(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def _describe_holder(fd: int) -> None:
    text = f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
    except OSError:
        pass  # a full disk must not stop a run that holds its lock; the text is only informative
