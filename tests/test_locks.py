"""Run locks: taking a lock is atomic, a dead holder's lock is free at once, and racers never both
train a run, even with delays injected where a check-then-act takeover would let them."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import mixkit.runs.job as job_module
from mixkit.mixture import Mixture
from mixkit.proxy import ProxyConfig
from mixkit.runs import RunStore, plan
from mixkit.runs.job import run_job
from mixkit.runs.locks import try_lock

REPO = Path(__file__).resolve().parents[1]
FAST = dict(context_length=64, batch_size=16, steps=12, eval_every=6, eval_tokens=1024, device="cpu",
            precision="fp32", threads=1)


def test_lock_excludes_a_second_holder_and_leaves_no_file(tmp_path):
    d = tmp_path / "run"
    first = try_lock(d)
    assert first is not None and (d / "lock").read_text().split()[0] == str(os.getpid())
    assert try_lock(d) is None  # a second open file, even in this process, is excluded
    first.release()
    assert not (d / "lock").exists()
    with try_lock(d) as again:
        assert again is not None
    assert not (d / "lock").exists()


HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mixkit.runs.locks import try_lock
    lock = try_lock(Path(sys.argv[1]))
    print("held" if lock else "busy", flush=True)
    time.sleep(600)
""")


def test_a_killed_holder_frees_its_lock_at_once(tmp_path):
    d = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(d)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert try_lock(d) is None  # a live process in another process holds it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
        proc.stdout.close()
    assert (d / "lock").exists()  # the killed holder could not remove it ...
    lock = try_lock(d)  # ... and it is free anyway: no PID check, no waiting for staleness
    assert lock is not None
    lock.release()


def test_a_lock_released_while_a_racer_opens_it_is_not_taken_twice(tmp_path, monkeypatch):
    """The holder unlinks its file on release. A racer that opened the file just before that unlink
    wins flock on the unlinked file; it must notice and not also hold the new one."""
    d = tmp_path / "run"
    holder = try_lock(d)
    opened, go, result = threading.Event(), threading.Event(), {}
    real_flock = fcntl.flock

    def paused_flock(fd, op):
        if threading.current_thread().name == "racer" and not opened.is_set():
            opened.set()  # the racer has opened the old file and is about to lock it
            go.wait(10)
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", paused_flock)
    racer = threading.Thread(target=lambda: result.update(lock=try_lock(d)), name="racer")
    racer.start()
    assert opened.wait(10)
    holder.release()
    newcomer = try_lock(d)  # takes the fresh lock file
    go.set()
    racer.join(10)
    assert newcomer is not None
    assert result["lock"] is None, "two holders of one run lock"
    newcomer.release()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("wait", [True, False])
def test_racing_for_a_dead_owners_lock_exactly_one_trains(token_data, tmp_path, monkeypatch, wait):
    """Two racers find a lock left by a dead process. Delays are injected where a takeover decides the
    lock is stale and removes it (unlink) and before it locks (flock), and training is slowed so the
    loser looks again while the winner trains: exactly one trains, the other skips or moves on."""
    cfg = ProxyConfig.preset("smoke", **FAST)
    (rid, cfg, mix), = plan(cfg, Mixture({token_data.domains[0]: 1.0}, domains=token_data.domains), token_data)
    store = RunStore(tmp_path / "runs")
    store.run_dir(rid).mkdir(parents=True)
    (store.run_dir(rid) / "lock").write_text(f"{_dead_pid()} {socket.gethostname()}\n")

    trained = []
    real_train, real_unlink, real_flock = job_module.train_proxy, os.unlink, fcntl.flock

    def slow_train(*a, **k):
        trained.append(threading.current_thread().name)
        time.sleep(3.0)
        return real_train(*a, **k)

    def slow_unlink(path, *a, **k):
        if Path(path).name == "lock" and threading.current_thread().name == "A":
            time.sleep(1.5)
        return real_unlink(path, *a, **k)

    def slow_flock(fd, op):
        if threading.current_thread().name == "A":
            time.sleep(0.5)
        return real_flock(fd, op)

    monkeypatch.setattr(job_module, "train_proxy", slow_train)
    monkeypatch.setattr(os, "unlink", slow_unlink)
    monkeypatch.setattr(fcntl, "flock", slow_flock)
    job = {"store": str(store.root), "run_id": rid, "config": cfg.to_dict(), "mixture": mix, "data": token_data,
           "checkpoints": False, "init_checkpoint": None, "wait": wait}
    statuses, start = {}, threading.Barrier(2)

    def racer():
        start.wait()
        statuses[threading.current_thread().name] = run_job(dict(job))[0]

    threads = [threading.Thread(target=racer, name=name) for name in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(trained) == 1, f"trained by {trained}"
    assert sorted(statuses.values()) == sorted(["ok", "skipped" if wait else "busy"]), statuses
    assert store.finished() == [rid] and not (store.run_dir(rid) / "lock").exists()


def test_a_filesystem_without_locks_is_named(tmp_path, monkeypatch):
    import errno

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(OSError, match=r"cannot lock .*run/lock: No locks available \(the run store's filesystem"):
        try_lock(tmp_path / "run")
