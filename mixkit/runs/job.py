"""One run of a sweep, as a worker (a local process, this process, or a Ray task) carries it out.

A job is a plain dict (picklable, so it crosses process and node boundaries): the store, the run id,
the config as a dict, the mixture (a Mixture, a Phased schedule or a Policy: each pickles as its
configuration), the token folder, and whether to keep weights or start from a
checkpoint. Workers reopen the token shards from the folder.
"""

from __future__ import annotations

import os
import threading
import time
import traceback

import torch

from mixkit.proxy import ProxyConfig, train_proxy
from mixkit.runs.locks import try_lock
from mixkit.runs.store import CHECKPOINT, STORAGE_ERRNOS, RunStore, storage_error_message


def complete(store: RunStore, rid: str, need_checkpoint: bool) -> bool:
    """Finished, and holding its weights when the sweep asks for them (a run first trained without
    `checkpoints=True` is trained again to keep them; training is deterministic, so its curve stays)."""
    return store.is_finished(rid) and (not need_checkpoint or (store.run_dir(rid) / CHECKPOINT).is_file())


def run_job(job: dict) -> tuple[str, str, str | None]:
    """Train one run into the store unless it is finished. Returns (status, run_id, error).

    status: "ok" (trained now), "skipped" (finished already, or by another process meanwhile),
    "failed" (error is its one-line message), or "busy": another live process holds the run and
    `job["wait"]` is False, so the caller can train something else and come back. By default a
    job waits for such a holder to finish or die.
    """
    store = RunStore(job["store"])
    rid = job["run_id"]
    need_checkpoint = bool(job.get("checkpoints"))
    try:
        lock = try_lock(store.run_dir(rid), wait=job.get("wait", True))
    except OSError as exc:  # e.g. no space for the lock file: the run fails, the sweep goes on
        return "failed", rid, _record_failure(store, job, exc)
    if lock is None:
        return ("skipped" if complete(store, rid, need_checkpoint) else "busy"), rid, None
    with lock:
        if complete(store, rid, need_checkpoint):
            return "skipped", rid, None
        return _train_into_store(store, job)


def _train_into_store(store: RunStore, job: dict) -> tuple[str, str, str | None]:
    rid = job["run_id"]
    config = ProxyConfig.from_dict(job["config"])
    ckpt = store.run_dir(rid) / CHECKPOINT if job.get("checkpoints") else None
    try:
        result = train_proxy(config, job["mixture"], job["data"], init_checkpoint=job.get("init_checkpoint"),
                             save_checkpoint=ckpt, progress=False)
        if result.run_id != rid:
            raise RuntimeError(f"run id mismatch: planned {rid}, trained {result.run_id}")
        store.write_result(result)
    except Exception as exc:  # a failing run is recorded, the sweep goes on
        return "failed", rid, _record_failure(store, job, exc)
    return "ok", rid, None


def _record_failure(store: RunStore, job: dict, exc: Exception) -> str:
    """Write the run's error.json (when the store still can) and return a one-line message."""
    rid = job["run_id"]
    short = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        short = storage_error_message(exc, store.run_dir(rid))
    try:
        store.write_error(rid, f"{short}\n{traceback.format_exc()}",
                          {k: v for k, v in job.items() if k in ("config", "init_checkpoint")})
    except OSError:
        pass  # the store itself is failing (full disk): the message still reaches the sweep
    return short


def init_worker(threads: int | None, parent_pid: int) -> None:
    """Set up a spawned worker process: its torch thread count, and an exit when the sweep dies."""
    if threads:
        torch.set_num_threads(threads)

    # Spawned workers outlive a SIGKILLed sweep otherwise; exiting with the parent keeps a restarted
    # sweep from racing orphans (an orphan's half-done run has no DONE, so nothing is lost).
    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
