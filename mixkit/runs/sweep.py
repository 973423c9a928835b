"""Sweeps: train every (config, mixture, seed) a store has not finished, resumably and in parallel.

A sweep plans its runs (validating every mixture before the store exists), keeps the ones the store
has not finished, and hands them as jobs (`mixkit.runs.job`) to worker processes, to this process,
or to Ray. A killed sweep that is restarted skips what finished, redoes what did not, and never
duplicates a run: the run id names its directory.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from mixkit.mixture import Mixture
from mixkit.progress import progress_bar
from mixkit.proxy import ProxyConfig, checkpoint_id, resolve_device, run_id
from mixkit.runs.job import complete, init_worker, run_job
from mixkit.runs.ray_backend import run_on_ray
from mixkit.runs.store import ERROR, RunStore, as_store, check_writable
from mixkit.tokens import as_token_data


def plan(configs, mixtures, data, seeds: Sequence[int] | None = None,
         init_checkpoint: str | os.PathLike | None = None) -> list[tuple[str, ProxyConfig, Mixture]]:
    """The (run_id, config, mixture) jobs of a sweep: the cartesian product configs x mixtures x seeds,
    duplicates dropped, in order."""
    configs = [configs] if isinstance(configs, ProxyConfig) else list(configs)
    mixtures = [mixtures] if isinstance(mixtures, (Mixture, dict)) else list(mixtures)
    if not configs or not mixtures:
        raise ValueError(f"a sweep needs at least one config and one mixture (got {len(configs)} and {len(mixtures)})")
    init_id = checkpoint_id(init_checkpoint) if init_checkpoint is not None else None
    jobs, seen = [], set()
    for config in configs:
        for mix in mixtures:
            if not isinstance(mix, Mixture):
                mix = Mixture(mix, domains=data.domains)
            mix.as_array(data.domains)  # unknown domains fail here, before any training
            for seed in (seeds if seeds is not None else [config.seed]):
                cfg = config if seed == config.seed else config.replace(seed=int(seed))
                rid = run_id(cfg, mix, cfg.seed, data.fingerprint, init_id)
                if rid not in seen:
                    seen.add(rid)
                    jobs.append((rid, cfg, mix))
    return jobs


def sweep(configs, mixtures, data, store, workers: int | None = None, threads_per_worker: int | None = None,
          progress: bool = True, backend: str = "local", *, seeds: Sequence[int] | None = None,
          init_checkpoint: str | os.PathLike | None = None, checkpoints: bool = False,
          address: str | None = None) -> list[str]:
    """Train every (config, mixture, seed) of the cartesian product that the store has not finished.

    `configs` and `mixtures` are one item or a list each; `seeds` overrides the configs' seeds.
    Returns the run ids of all planned runs (finished before or now, or failed), in plan order.
    Runs go to `workers` spawned processes (default: one per core on CPU with one torch thread
    each, which beat one process with all threads on a 2-core machine; one on a GPU);
    `workers=1` trains in this process. A failing run writes error.json, is counted in a warning,
    and does not stop the others. `checkpoints=True` keeps each run's final weights as model.pt
    (for continual runs); `init_checkpoint` starts every run from a saved model.
    `backend="ray"` sends runs to a Ray cluster at `address` (needs `pip install ray`).
    Worker processes are spawned, so a script that calls `sweep` with workers > 1 needs the usual
    `if __name__ == "__main__":` guard. Workers reopen the token shards from `data.root`.
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"unknown sweep backend {backend!r}; choose 'local' or 'ray'")
    data = as_token_data(data)
    store = as_store(store)
    # Plan (and so validate every mixture) before the store exists: bad input writes nothing.
    jobs = plan(configs, mixtures, data, seeds=seeds, init_checkpoint=init_checkpoint)
    ids = [rid for rid, _, _ in jobs]
    pending = [(rid, cfg, mix) for rid, cfg, mix in jobs if not complete(store, rid, checkpoints)]
    if not pending:
        return ids
    check_writable(store.root)
    payloads = [_job(store, data, rid, cfg, mix, checkpoints, init_checkpoint) for rid, cfg, mix in pending]
    layout = _Layout.choose(pending[0][1], len(pending), workers, threads_per_worker)
    if (backend != "local" or layout.workers != 1) and getattr(data, "root", None) is None:
        raise ValueError("sweep with worker processes needs token data loaded from a folder (data.root); "
                         "use workers=1 for in-memory data")
    failures = _Progress(len(jobs), len(pending), progress).run(
        lambda done: _dispatch(payloads, data, store, layout, backend, address, done))
    if failures:
        warnings.warn(f"{len(failures)} of {len(pending)} proxy run(s) failed (details in {ERROR} of each run "
                      f"directory in {store.root}); first: {failures[0][0]}: {failures[0][1]}", stacklevel=2)
    return ids


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
    def choose(cls, config: ProxyConfig, n_pending: int, workers: int | None, threads: int | None) -> "_Layout":
        on_gpu = resolve_device(config).startswith("cuda")
        cores = os.cpu_count() or 1
        if workers is None:
            workers = 1 if on_gpu else min(n_pending, cores)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if threads is None and not on_gpu:
            threads = max(1, cores // workers)
        return cls(workers, threads, on_gpu)


class _Progress:
    """The sweep's progress bar and its list of failed runs."""

    def __init__(self, total: int, pending: int, progress: bool):
        self.bar = progress_bar(total=total, initial=total - pending, desc="proxy runs", unit="run",
                                disable=not progress)
        self.failures: list[tuple[str, str]] = []

    def done(self, status: str, rid: str, err: str | None) -> None:
        if status == "failed":
            self.failures.append((rid, err))
        self.bar.update(1)
        self.bar.set_postfix(failed=len(self.failures))

    def run(self, dispatch) -> list[tuple[str, str]]:
        try:
            dispatch(self.done)
        finally:
            self.bar.close()
        return self.failures


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
    try:
        for job in payloads:
            done(*run_job({**job, "data": data}))
    finally:
        torch.set_num_threads(before)


def _run_in_pool(payloads: list[dict], store: RunStore, layout: _Layout, done) -> None:
    """Every job in spawned worker processes; a worker that dies fails its run, not the sweep."""
    with ProcessPoolExecutor(max_workers=min(layout.workers, len(payloads)), mp_context=mp.get_context("spawn"),
                             initializer=init_worker, initargs=(layout.threads, os.getpid())) as pool:
        futures = {pool.submit(run_job, job): job["run_id"] for job in payloads}
        for fut in as_completed(futures):
            rid = futures[fut]
            try:
                done(*fut.result())
            except BrokenProcessPool as exc:
                msg = f"worker process died: {exc}"
                store.write_error(rid, msg)
                done("failed", rid, msg)
