"""Proxy runs on disk: the run store, sweeps that fill it, and the run table read from it.

store (one directory per run, DONE last) with locks (flock, held while a run trains) -> job (one
run as a worker trains it) -> sweep (plan, local workers) and ray_backend (beyond one machine) ->
run_table (load_runs, import_runs). Run ids come from the proxy (`mixkit.proxy.identity`).
"""

from mixkit.proxy import config_hash, run_id
from mixkit.runs.run_table import import_runs, load_runs, store_summary, summary_table
from mixkit.runs.store import RunStore, result_rows
from mixkit.runs.sweep import SweepResult, plan, sweep

__all__ = ["RunStore", "SweepResult", "config_hash", "import_runs", "load_runs", "plan", "result_rows", "run_id",
           "store_summary", "summary_table", "sweep"]
