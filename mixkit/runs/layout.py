"""How many worker processes and torch threads each a CPU sweep uses, per CPU kind, from measurement.

A proxy run is small (d32-d256): its matmuls are too thin and its elementwise ops too short to keep
several threads busy, so on every CPU kind measured, one single-threaded worker per core trained
more runs per hour than fewer workers with more threads each (bench/sweep_throughput.py, figures in
`MEASURED` and bench/README.md). The layout depends only on the CPU (kind and core count), never
on how many runs are pending: the thread count is part of every run id, so a run keeps its id
whatever else is swept with it.
"""

from __future__ import annotations

import os

from mixkit.proxy.device import cpu_kind

# Torch threads per worker that maximised runs/hour, per CPU kind, measured with
# `python bench/sweep_throughput.py --layouts auto` (and `--emulate-avx2` for "AVX2"). Kinds not
# listed get DEFAULT_THREADS. Each entry: kind -> (threads per worker, what was measured).
MEASURED: dict[str, tuple[int, str]] = {
    # 2-core Xeon VM, 2026-11-30, shared with other jobs (load ~6): read the ratio.
    "AVX2": (1, "--emulate-avx2 --runs 4 --steps 60: 2x1 177 runs/hour, 1x2 40 (0.23)"),
    "AVX512+bf16": (1, "--runs 8: 2x1 245 runs/hour; 1x2 had not finished its 8 runs after 14 min (< 34)"),
}
DEFAULT_THREADS = 1


def threads_per_worker(kind: str | None = None) -> int:
    """The measured best torch thread count per worker on a CPU of this kind (default: this CPU's)."""
    kind = cpu_kind() if kind is None else kind
    return MEASURED.get(kind, (DEFAULT_THREADS, ""))[0]


def choose_layout(workers: int | None = None, threads: int | None = None, cores: int | None = None,
                  kind: str | None = None) -> tuple[int, int]:
    """(workers, threads per worker) for a CPU sweep; given values are kept, missing ones chosen.

    Neither given: threads from the measured table for this CPU kind and as many workers as fit
    (cores // threads). Only workers given: the cores shared out among them (at least 1 thread),
    as before. Only threads given: cores // threads workers.
    """
    cores = cores or os.cpu_count() or 1
    for name, value in (("workers", workers), ("threads", threads), ("cores", cores)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"choose_layout: {name} must be a positive int or None, got {value!r}")
    if threads is None:
        threads = max(1, cores // workers) if workers is not None else min(cores, threads_per_worker(kind))
    if workers is None:
        workers = max(1, cores // threads)
    return workers, threads
