"""Sweeps beyond one machine: one Ray task per run, on a local or an existing Ray cluster.

Ray is optional (`pip install 'mixkit[ray]'`) and imported only when a sweep asks for it.
"""

from __future__ import annotations

import torch

from mixkit.runs.job import run_job
from mixkit.runs.store import RunStore


def _ray_job(job: dict, threads: int | None) -> tuple[str, str, str | None]:
    """One Ray task: the same job a local worker runs, with its torch thread count pinned."""
    if threads:
        torch.set_num_threads(threads)
    return run_job(job)


def run_on_ray(payloads: list[dict], threads: int | None, address: str | None, done, gpus: float = 0.0) -> None:
    """One Ray task per run. Connects to the cluster at `address` or starts a local one.

    The store and the token folder must be on a filesystem every Ray node sees; a run is finished
    only when its DONE marker lands there, so a task lost with its node is simply run again by the
    next sweep.
    """
    try:
        import ray
    except ImportError:
        raise ValueError("backend='ray' needs Ray: pip install 'mixkit[ray]'") from None
    started_here = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started_here = True
    try:
        remote = ray.remote(num_cpus=threads or 1, num_gpus=gpus, max_retries=0)(_ray_job)
        refs = {remote.remote(job, threads): job["run_id"] for job in payloads}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    done(*ray.get(ref))
                except Exception as exc:  # a lost node or worker: record and go on
                    msg = f"{type(exc).__name__}: {exc}"
                    RunStore(payloads[0]["store"]).write_error(refs[ref], msg)
                    done("failed", refs[ref], msg)
    finally:
        if started_here and address is None:
            ray.shutdown()
