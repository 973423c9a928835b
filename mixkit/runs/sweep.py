"""Sweeps: train every (config, mixture, seed) a store has not finished, resumably and in parallel.

A sweep plans its runs (validating every mixture before the store exists), keeps the ones the store
has not finished, and hands them as jobs (`mixkit.runs.job`) to worker processes, to this process,
or to Ray. A killed sweep that is restarted skips what finished, redoes what did not, and never
duplicates a run: the run id names its directory, and a lock held while it trains
(`mixkit.runs.locks`) keeps a second process off it. Sweeps sharing a store share its runs: each
skips the runs another live process is training and looks at them again once nothing else is left.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import time
import warnings
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from mixkit.mixture import Mixture, Phased
from mixkit.progress import progress_bar
from mixkit.proxy import Policy, ProxyConfig, checkpoint_id, resolve_device, resolve_mixing, run_id
from mixkit.runs.job import complete, init_worker, run_job
from mixkit.runs.layout import choose_layout
from mixkit.runs.ray_backend import run_on_ray
from mixkit.runs.store import ERROR, RunStore, as_store, check_writable
from mixkit.tokens import as_token_data

# How often a sweep looks again at a run another process is training, once nothing else is left.
_RETRY_S = 1.0


def plan(configs, mixtures, data, seeds: Sequence[int] | None = None,
         init_checkpoint: str | os.PathLike | None = None,
         threads: int | None = None) -> list[tuple[str, ProxyConfig, Mixture]]:
    """The (run_id, config, mixture) jobs of a sweep: the cartesian product configs x mixtures x seeds,
    duplicates dropped, in order. A mixture is a Mixture (or dict), a `Phased` schedule or a `Policy`
    (`mixkit.proxy.mixing`); each is checked against the data and every config's steps here. `threads` is the torch thread count the runs will train with, set on
    configs that leave it open: it is part of a CPU run's identity (see `mixkit.proxy.identity`)."""
    configs = _config_list(configs)
    if threads is not None:
        configs = [c if c.threads is not None else c.replace(threads=int(threads)) for c in configs]
    mixtures = [mixtures] if isinstance(mixtures, (Mixture, dict, Phased, Policy)) else list(mixtures)
    if not configs or not mixtures:
        raise ValueError(f"a sweep needs at least one config and one mixture (got {len(configs)} and {len(mixtures)})")
    init_id = checkpoint_id(init_checkpoint) if init_checkpoint is not None else None
    jobs, seen = [], set()
    for config in configs:
        for mix in mixtures:
            # Unknown domains, schedules that do not cover the run, policies whose first weights are
            # not a mixture: all fail here, before any training.
            mix = resolve_mixing(mix, data.domains, config.steps)
            for seed in (seeds if seeds is not None else [config.seed]):
                cfg = config if seed == config.seed else config.replace(seed=int(seed))
                rid = run_id(cfg, mix, cfg.seed, data.fingerprint, init_id)
                if rid not in seen:
                    seen.add(rid)
                    jobs.append((rid, cfg, mix))
    return jobs


def _config_list(configs) -> list[ProxyConfig]:
    return [configs] if isinstance(configs, ProxyConfig) else list(configs)


class SweepResult(list):
    """The run ids of all planned runs in plan order (a list, as sweeps have always returned), with
    what became of each, counted in memory as the sweep ran (not read back from the store, which
    may be the thing failing): `finished` (trained now or before), `trained` (by this sweep),
    `skipped` (finished before it, or by another process meanwhile), and `failed` ({run id: one-line
    error}; a planned run this sweep lost track of counts as failed)."""

    def __init__(self, ids: Sequence[str], status: dict[str, str] | None = None,
                 errors: dict[str, str] | None = None):
        super().__init__(ids)
        status, errors = status or {}, errors or {}
        self.trained = [r for r in ids if status.get(r) == "ok"]
        self.skipped = [r for r in ids if status.get(r) == "skipped"]
        self.failed = {r: errors.get(r, "the sweep did not run it") for r in ids
                       if status.get(r) not in ("ok", "skipped")}

    @property
    def finished(self) -> list[str]:
        return [r for r in self if r not in self.failed]

    def summary(self) -> dict[str, int]:
        """{"planned", "finished", "trained", "failed"} counts, for `mixkit sweep`."""
        return {"planned": len(self), "finished": len(self.finished), "trained": len(self.trained),
                "failed": len(self.failed)}


def sweep(configs, mixtures, data, store, workers: int | None = None, threads_per_worker: int | None = None,
          progress: bool = True, backend: str = "local", *, seeds: Sequence[int] | None = None,
          init_checkpoint: str | os.PathLike | None = None, checkpoints: bool = False,
          address: str | None = None) -> SweepResult:
    """Train every (config, mixture, seed) of the cartesian product that the store has not finished.

    `configs` and `mixtures` are one item or a list each; `seeds` overrides the configs' seeds.
    Returns the run ids of all planned runs in plan order, as a `SweepResult` (a list that also says
    which finished and which failed). Runs go to `workers` spawned processes (default: one per core
    on CPU with one torch thread each; one on a GPU); `workers=1` trains in this process. A failing
    run writes error.json (when the store still can), is counted in a warning and in the result,
    and does not stop the others. A run another live process is training is left to it and
    checked again once nothing else is left, so sweeps sharing a store share its runs.
    `checkpoints=True` keeps each run's final weights as model.pt (for continual runs);
    `init_checkpoint` starts every run from a saved model. `backend="ray"` sends runs to a Ray
    cluster at `address` (needs `pip install ray`). Worker processes are spawned, so a script that
    calls `sweep` with workers > 1 needs the usual `if __name__ == "__main__":` guard.
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"unknown sweep backend {backend!r}; choose 'local' or 'ray'")
    data = as_token_data(data)
    store = as_store(store)
    # Layout and plan (so every mixture is validated) before the store exists: bad input writes
    # nothing. The layout comes first because each run's thread count is part of its id.
    layout = _Layout.choose(_config_list(configs)[:1], workers, threads_per_worker)
    jobs = plan(configs, mixtures, data, seeds=seeds, init_checkpoint=init_checkpoint, threads=layout.threads)
    ids = [rid for rid, _, _ in jobs]
    pending = [(rid, cfg, mix) for rid, cfg, mix in jobs if not complete(store, rid, checkpoints)]
    if not pending:
        return SweepResult(ids, dict.fromkeys(ids, "skipped"))
    check_writable(store.root)
    payloads = [_job(store, data, rid, cfg, mix, checkpoints, init_checkpoint) for rid, cfg, mix in pending]
    layout = layout.at_most(len(pending))
    if (backend != "local" or layout.workers != 1) and getattr(data, "root", None) is None:
        raise ValueError("sweep with worker processes needs token data loaded from a folder (data.root); "
                         "use workers=1 for in-memory data")
    tally = _Progress(len(jobs), len(pending), progress)
    tally.run(lambda done: _dispatch(payloads, data, store, layout, backend, address, done))
    finished_before = set(ids) - {rid for rid, _, _ in pending}
    result = SweepResult(ids, {**dict.fromkeys(finished_before, "skipped"), **tally.status}, tally.errors)
    if result.failed:
        rid, first = next(iter(result.failed.items()))
        warnings.warn(f"{len(result.failed)} of {len(pending)} proxy run(s) failed (details in {ERROR} of each run "
                      f"directory in {store.root}, where it could be written); first: {rid}: {first}", stacklevel=2)
    return result


def _job(store: RunStore, data, rid: str, cfg: ProxyConfig, mix: Mixture, checkpoints: bool,
         init_checkpoint) -> dict:
    return {"store": str(store.root.resolve()), "run_id": rid, "config": cfg.to_dict(), "mixture": mix,
            "data": str(Path(data.root).resolve()) if getattr(data, "root", None) else None,
            "checkpoints": checkpoints,
            "init_checkpoint": str(init_checkpoint) if init_checkpoint is not None else None}


@dataclass(frozen=True)
class _Layout:
    """How a sweep spreads over the machine: worker processes x torch threads each, and the GPU."""

    workers: int
    threads: int | None
    on_gpu: bool

    @classmethod
    def choose(cls, configs: list[ProxyConfig], workers: int | None, threads: int | None) -> "_Layout":
        """On a CPU, `mixkit.runs.layout.choose_layout`: torch threads per worker measured per CPU kind
        and as many workers as fit the cores; given values are kept. One worker on a GPU. The layout
        does not depend on how many runs are pending, so a run keeps its id (which hashes the thread
        count) whatever else is done."""
        on_gpu = bool(configs) and resolve_device(configs[0]).startswith("cuda")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if on_gpu:
            return cls(1 if workers is None else workers, threads, True)
        workers, threads = choose_layout(workers, threads)
        return cls(workers, threads, False)

    def at_most(self, n_runs: int) -> "_Layout":
        """No more workers than runs (a lone run trains in this process), threads unchanged."""
        return dataclasses.replace(self, workers=max(1, min(self.workers, n_runs)))


class _Progress:
    """The sweep's progress bar and, in memory, what became of each run it dispatched."""

    def __init__(self, total: int, pending: int, progress: bool):
        self.bar = progress_bar(total=total, initial=total - pending, desc="proxy runs", unit="run",
                                disable=not progress)
        self.status: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def done(self, status: str, rid: str, err: str | None) -> None:
        self.status[rid] = status
        if status == "failed":
            self.errors[rid] = err or "failed without a message"
        self.bar.update(1)
        self.bar.set_postfix(failed=len(self.errors))

    def run(self, dispatch) -> None:
        try:
            dispatch(self.done)
        finally:
            self.bar.close()


class _Queue:
    """Jobs in plan order, then the ones another live process held, each retried every _RETRY_S
    seconds: a sweep trains what nobody else is training first and waits only when nothing is left."""

    def __init__(self, payloads: list[dict]):
        self.fresh = deque(payloads)
        self.held: deque[tuple[float, dict]] = deque()

    def __bool__(self) -> bool:
        return bool(self.fresh or self.held)

    def next(self) -> dict | None:
        """The next job to try now (None: only held jobs are left and none is due yet)."""
        if self.fresh:
            return self.fresh.popleft()
        if self.held and self.held[0][0] <= time.monotonic():
            return self.held.popleft()[1]
        return None

    def hold(self, job: dict) -> None:
        self.held.append((time.monotonic() + _RETRY_S, job))

    def pause(self) -> None:
        time.sleep(max(0.0, min(_RETRY_S, self.held[0][0] - time.monotonic())) if self.held else 0.0)

    def drain(self) -> list[dict]:
        out = list(self.fresh) + [job for _, job in self.held]
        self.fresh.clear()
        self.held.clear()
        return out


def _dispatch(payloads: list[dict], data, store: RunStore, layout: _Layout, backend: str, address, done) -> None:
    if backend == "ray":
        run_on_ray(payloads, layout.threads, address, done, gpus=1.0 if layout.on_gpu else 0.0)
    elif layout.workers == 1:
        _run_here(payloads, data, layout.threads, done)
    else:
        _run_in_pool(payloads, store, layout, done)


def _run_here(payloads: list[dict], data, threads: int | None, done) -> None:
    """Every job in this process, reusing the loaded shards; torch's thread count is restored after."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    queue = _Queue(payloads)
    try:
        while queue:
            job = queue.next()
            if job is None:
                queue.pause()
                continue
            status = run_job({**job, "data": data, "wait": False})
            if status[0] == "busy":
                queue.hold(job)
            else:
                done(*status)
    finally:
        torch.set_num_threads(before)


def _run_in_pool(payloads: list[dict], store: RunStore, layout: _Layout, done) -> None:
    """Every job in spawned worker processes; a worker that dies fails its run (and, as the pool
    is then broken, the runs not yet started), not the sweep."""
    queue, running = _Queue(payloads), {}
    with ProcessPoolExecutor(max_workers=min(layout.workers, len(payloads)), mp_context=mp.get_context("spawn"),
                             initializer=init_worker, initargs=(layout.threads, os.getpid())) as pool:
        while queue or running:
            _fill(pool, queue, running, layout.workers, store, done)
            if not running:
                queue.pause()
                continue
            finished, _ = wait(running, timeout=_RETRY_S, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = running.pop(fut)
                try:
                    status = fut.result()
                except BrokenProcessPool as exc:
                    _worker_died(store, job["run_id"], exc, done)
                    continue
                if status[0] == "busy":
                    queue.hold(job)
                else:
                    done(*status)


def _fill(pool, queue: _Queue, running: dict, workers: int, store: RunStore, done) -> None:
    """Give idle workers the next jobs that are due (no more than one job per worker is in flight,
    so a run another sweep frees meanwhile is still picked up in order)."""
    while len(running) < workers and (job := queue.next()) is not None:
        try:
            running[pool.submit(run_job, {**job, "wait": False})] = job
        except BrokenProcessPool as exc:
            for lost in [job, *queue.drain()]:
                _worker_died(store, lost["run_id"], exc, done)


def _worker_died(store: RunStore, rid: str, exc: BaseException, done) -> None:
    msg = f"worker process died: {exc}"
    try:
        store.write_error(rid, msg)
    except OSError:
        pass  # the failure is still counted in memory
    done("failed", rid, msg)
