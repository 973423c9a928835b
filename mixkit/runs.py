"""The run store: one directory per proxy run, resumable sweeps, and the run table.

Layout of a store:

    <store>/<run_id>/lock          PID of the process training it (removed when it stops)
    <store>/<run_id>/config.json   resolved config, mixture, data fingerprint, metrics   } written only
    <store>/<run_id>/curve.csv     run-table rows of this run (mixkit.table schema)      } when the run
    <store>/<run_id>/model.pt      final weights (only when checkpoints are asked for)   } finishes,
    <store>/<run_id>/DONE          renamed in last: sha256 of the files above; the only } atomically
                                   sign a run is finished (a mismatch means corrupt: re-run, never loaded)
    <store>/<run_id>/error.json    a failed run's error (the run is retried by the next sweep)

The run id is a content hash of (config, mixture, seed, data fingerprint, starting checkpoint), so
the same run always lands in the same directory: a sweep that is killed and restarted skips what
finished, redoes what did not, and never duplicates a run.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import itertools
import json
import math
import os
import socket
import threading
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Sequence

import pandas as pd
from tqdm.auto import tqdm

from mixkit.mixture import Mixture
from mixkit.paths import atomic_write_text, sha256_file
from mixkit.table import REQUIRED_COLUMNS, OPTIONAL_COLUMNS, validate_table, weight_columns

DONE, CONFIG, CURVE, ERROR, LOCK, CHECKPOINT = "DONE", "config.json", "curve.csv", "error.json", "lock", "model.pt"
TABLE_COLUMNS = list(REQUIRED_COLUMNS) + list(OPTIONAL_COLUMNS)
# Fields that do not change what a run computes (thread count, preset label) stay out of its id.
_NOT_HASHED = ("threads", "name", "seed")
_LOCK_POLL_S = 1.0


# ---------------------------------------------------------------------------- identity


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _config_dict(config) -> dict:
    d = config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)
    d = {k: v for k, v in d.items() if k not in _NOT_HASHED}
    # "auto" device and precision are hashed as what they resolve to on this machine: a bf16 run and
    # an fp32 run of the same config are different computations and must not share a cache entry.
    if d.get("device") == "auto" or d.get("precision") == "auto":
        from mixkit.proxy.train import resolve_device, resolve_precision

        device = resolve_device(config)
        d["device"] = "cuda" if device.startswith("cuda") else device
        d["precision"] = resolve_precision(config, device)
    return d


def _mixture_dict(mixture: Mixture) -> dict:
    # Rounded and zero-free so 0.1 + 0.2 style float noise or listing a zero-weight domain keeps the id.
    return {d: round(float(w), 10) for d, w in sorted(mixture.weights.items()) if round(float(w), 10) != 0}


def config_hash(config) -> str:
    """Hash of the config fields that change the computation (not seed, threads or preset name)."""
    return _digest(_config_dict(config))


def run_id(config, mixture: Mixture, seed: int, data_fingerprint: str, init_checkpoint_id: str | None = None) -> str:
    """sha256 of the canonical JSON of everything that defines a run, first 16 hex digits."""
    return _digest({
        "config": _config_dict(config),
        "mixture": _mixture_dict(mixture),
        "seed": int(seed),
        "data": str(data_fingerprint),
        "init": init_checkpoint_id,
    })


# ---------------------------------------------------------------------------- the store


class RunStore:
    """A folder of run directories (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.root = Path(path)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    def run_dir(self, rid: str) -> Path:
        return self.root / rid

    def _dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def is_finished(self, rid: str) -> bool:
        """DONE exists and every file it vouches for still has the recorded sha256."""
        return _verified(self.run_dir(rid))

    def finished(self) -> list[str]:
        return [p.name for p in self._dirs() if _verified(p)]

    def corrupt(self) -> list[str]:
        """Runs whose DONE marker does not match their files (truncated, edited, or torn copies)."""
        return [p.name for p in self._dirs() if (p / DONE).is_file() and not _verified(p)]

    def failed(self) -> list[str]:
        return [p.name for p in self._dirs() if (p / ERROR).is_file() and not (p / DONE).is_file()]

    def read_config(self, rid: str) -> dict:
        path = self.run_dir(rid) / CONFIG
        if not (self.run_dir(rid) / DONE).is_file():
            raise FileNotFoundError(f"run {rid} is not finished in {self.root}")
        return json.loads(path.read_text())

    def read_curve(self, rid: str) -> pd.DataFrame:
        if not self.is_finished(rid):
            raise FileNotFoundError(f"run {rid} is not finished in {self.root}")
        return pd.read_csv(self.run_dir(rid) / CURVE, dtype={"run_id": str, "config_hash": str, "domain": str})

    def checkpoint(self, rid: str) -> Path:
        """Path of a finished run's saved weights (sweeps save them with `checkpoints=True`)."""
        path = self.run_dir(rid) / CHECKPOINT
        if not self.is_finished(rid) or not path.is_file():
            raise FileNotFoundError(f"run {rid} in {self.root} has no finished checkpoint {CHECKPOINT}")
        return path

    def write_result(self, result) -> Path:
        """Record a finished RunResult: config.json and curve.csv atomically, then DONE last."""
        d = self.run_dir(result.run_id)
        d.mkdir(parents=True, exist_ok=True)
        (d / ERROR).unlink(missing_ok=True)
        record = {
            "run_id": result.run_id,
            "config": result.config.to_dict(),
            "resolved": {"device": result.device, "precision": result.precision},
            "config_hash": result.config_hash,
            "seed": int(result.config.seed),
            "mixture": result.mixture.to_dict(),
            "mixture_name": result.mixture.name,
            "data_fingerprint": result.data_fingerprint,
            "domains": list(result.domains),
            "init_checkpoint_id": result.init_checkpoint_id,
            "model_size": int(result.n_non_embedding),
            "metrics": result.metrics(),
            "train_loss": result.train_loss.to_dict("records"),
        }
        _finish(d, {CONFIG: json.dumps(_json_safe(record), indent=1), CURVE: result.to_table().to_csv(index=False)})
        return d

    def write_error(self, rid: str, error: str, job: dict | None = None) -> Path:
        d = self.run_dir(rid)
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / ERROR, json.dumps(_json_safe({"run_id": rid, "error": error, "job": job or {}}), indent=1))
        return d


def _finish(d: Path, texts: dict[str, str]) -> None:
    """Write a run's files and its DONE marker so that a kill at any moment leaves either no
    result files at all or a finished run.

    Everything is first written under hidden staging names (slow: serialization, fsync); the
    renames into place, DONE last, are a few microseconds of metadata operations.
    """
    staged = {name: d / f".{name}.staged" for name in texts}
    for name, text in texts.items():
        atomic_write_text(staged[name], text)
    hashes = {name: sha256_file(path) for name, path in staged.items()}
    if (d / CHECKPOINT).is_file():
        hashes[CHECKPOINT] = sha256_file(d / CHECKPOINT)
    done = d / f".{DONE}.staged"
    atomic_write_text(done, json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "sha256": hashes}))
    for name, path in staged.items():
        os.replace(path, d / name)
    os.replace(done, d / DONE)


def _verified(d: Path) -> bool:
    try:
        record = json.loads((d / DONE).read_text())
        files = record["sha256"]
        return CURVE in files and CONFIG in files and all(sha256_file(d / n) == h for n, h in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def storage_error_message(exc: OSError, where: Path) -> str:
    """A clear sentence for the storage failures a user can act on (full disk, no permission)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device holding {where} ({exc}); free space or point the store elsewhere"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to {where} ({exc}); check its permissions or choose a writable store"
    return f"cannot write to {where}: {exc}"


def _check_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise OSError(exc.errno, storage_error_message(exc, root)) from exc


def _json_safe(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _as_store(store) -> RunStore:
    return store if isinstance(store, RunStore) else RunStore(store)


def store_summary(store) -> dict[str, int]:
    """{"runs": finished runs, "failed": failed runs (error.json without DONE)} for `mixkit runs --json`."""
    store = _as_store(store)
    return {"runs": len(store.finished()), "failed": len(store.failed())}


def load_runs(store, details: bool = False) -> pd.DataFrame:
    """The run table (mixkit.table schema) of every finished run; unfinished directories are skipped.

    A training domain missing from some runs' mixtures gets weight 0 there. `details=True` adds
    columns from each run's config.json (preset, d_model, n_layers, lr, steps, init_checkpoint_id,
    wall_time_s) for analyses that split runs by them, e.g. continual runs by their start.
    """
    store = _as_store(store)
    corrupt = store.corrupt()
    if corrupt:
        warnings.warn(f"{len(corrupt)} run(s) in {store.root} do not match their DONE checksums and are left "
                      f"out (the next sweep re-runs them): {corrupt[:5]}", stacklevel=2)
    failed = store.failed()
    if failed:
        warnings.warn(f"{len(failed)} failed run(s) in {store.root} are left out (see their {ERROR}): "
                      f"{failed[:5]}", stacklevel=2)
    frames = []
    for rid in store.finished():
        curve = store.read_curve(rid)
        if details:
            rec = store.read_config(rid)
            cfg = rec.get("config", {})
            for key in ("name", "d_model", "n_layers", "lr", "steps"):
                curve[key if key != "name" else "preset"] = cfg.get(key)
            curve["init_checkpoint_id"] = rec.get("init_checkpoint_id")
            curve["wall_time_s"] = rec.get("metrics", {}).get("wall_time_s")
        frames.append(curve)
    if not frames:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    wcols = sorted(weight_columns(df))
    df[wcols] = df[wcols].fillna(0.0)
    rest = [c for c in df.columns if c not in TABLE_COLUMNS and c not in wcols]
    df = df[[c for c in TABLE_COLUMNS if c in df.columns] + wcols + rest]
    df = validate_table(df)
    df["config_hash"] = df["config_hash"].fillna("").astype(str)
    return df


def import_runs(table, store) -> list[str]:
    """Bring runs trained elsewhere (a DataFrame or CSV in the run-table schema) into the store.

    Each run becomes a finished directory holding its rows; runs already in the store are kept as
    they are. Returns the imported run ids.
    """
    store = _as_store(store)
    if isinstance(table, (str, os.PathLike)):
        path = Path(table)
        if not path.is_file():
            raise FileNotFoundError(f"run table {path} does not exist")
        table = pd.read_csv(path, dtype={"run_id": str, "config_hash": str, "domain": str})
    df = validate_table(table)
    df["run_id"] = df["run_id"].astype(str)
    imported = []
    for rid, rows in df.groupby("run_id", sort=False):
        d = store.run_dir(_dir_name(rid))
        if (d / DONE).is_file():
            continue
        d.mkdir(parents=True, exist_ok=True)
        wcols = weight_columns(rows)
        record = {"run_id": rid, "imported": True, "seed": int(rows["seed"].iloc[0]),
                  "config_hash": str(rows["config_hash"].iloc[0]), "model_size": _int_or_none(rows["model_size"].iloc[0]),
                  "mixture": {c[2:]: float(rows[c].iloc[0]) for c in wcols}, "config": {}, "metrics": {}}
        _finish(d, {CONFIG: json.dumps(_json_safe(record), indent=1), CURVE: rows.to_csv(index=False)})
        imported.append(rid)
    return imported


def _int_or_none(v):
    try:
        return int(v) if math.isfinite(float(v)) else None
    except (TypeError, ValueError):
        return None


def _dir_name(rid: str) -> str:
    safe = all(c.isalnum() or c in "-_." for c in rid) and 0 < len(rid) <= 100 and not rid.startswith(".")
    return rid if safe else "imported-" + hashlib.sha256(rid.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------- locks


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_lock(d: Path) -> bool:
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


def _unlock(d: Path) -> None:
    lock = d / LOCK
    try:
        if lock.read_text().split()[0] == str(os.getpid()):
            lock.unlink()
    except (OSError, IndexError):
        pass


# ---------------------------------------------------------------------------- one job


def _complete(store: RunStore, rid: str, need_checkpoint: bool) -> bool:
    """Finished, and holding its weights when the sweep asks for them (a run first trained without
    `checkpoints=True` is trained again to keep them; training is deterministic, so its curve stays)."""
    return store.is_finished(rid) and (not need_checkpoint or (store.run_dir(rid) / CHECKPOINT).is_file())


def _run_job(job: dict) -> tuple[str, str, str | None]:
    """Train one run into the store unless it is finished. Returns (status, run_id, error)."""
    from mixkit.proxy.train import ProxyConfig, train_proxy

    store = RunStore(job["store"])
    rid = job["run_id"]
    d = store.run_dir(rid)
    # Another live process holding the lock is training this run: wait for it to finish or die.
    need_checkpoint = bool(job.get("checkpoints"))
    while not _try_lock(d):
        if _complete(store, rid, need_checkpoint):
            return "skipped", rid, None
        time.sleep(_LOCK_POLL_S)
    try:
        if _complete(store, rid, need_checkpoint):
            return "skipped", rid, None
        config = ProxyConfig.from_dict(job["config"])
        ckpt = d / CHECKPOINT if job.get("checkpoints") else None
        try:
            result = train_proxy(config, job["mixture"], job["data"], init_checkpoint=job.get("init_checkpoint"),
                                 save_checkpoint=ckpt, progress=False)
            if result.run_id != rid:
                raise RuntimeError(f"run id mismatch: planned {rid}, trained {result.run_id}")
            store.write_result(result)
        except Exception as exc:  # a failing run is recorded, the sweep goes on
            short = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
                short = storage_error_message(exc, d)
            try:
                store.write_error(rid, f"{short}\n{traceback.format_exc()}",
                                  {k: v for k, v in job.items() if k in ("config", "init_checkpoint")})
            except OSError:
                pass  # the store itself is failing (full disk): the message still reaches the sweep
            return "failed", rid, short
        return "ok", rid, None
    finally:
        _unlock(d)


def _init_worker(threads: int | None, parent_pid: int) -> None:
    import torch

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


# ---------------------------------------------------------------------------- sweeps


def plan(configs, mixtures, data, seeds: Sequence[int] | None = None,
         init_checkpoint: str | os.PathLike | None = None) -> list[tuple[str, object, Mixture]]:
    """The (run_id, config, mixture) jobs of a sweep: the cartesian product configs x mixtures x seeds,
    duplicates dropped, in order."""
    from mixkit.proxy.train import ProxyConfig, checkpoint_id

    configs = [configs] if isinstance(configs, ProxyConfig) else list(configs)
    mixtures = [mixtures] if isinstance(mixtures, (Mixture, dict)) else list(mixtures)
    if not configs or not mixtures:
        raise ValueError(f"a sweep needs at least one config and one mixture (got {len(configs)} and {len(mixtures)})")
    init_id = checkpoint_id(init_checkpoint) if init_checkpoint is not None else None
    jobs, seen = [], set()
    for config, mix in itertools.product(configs, mixtures):
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
    from mixkit.proxy.train import _load_data, resolve_device

    data = _load_data(data)
    store = _as_store(store)
    # Plan (and so validate every mixture) before the store exists: bad input writes nothing.
    jobs = plan(configs, mixtures, data, seeds=seeds, init_checkpoint=init_checkpoint)
    ids = [rid for rid, _, _ in jobs]
    pending = [(rid, cfg, mix) for rid, cfg, mix in jobs if not _complete(store, rid, checkpoints)]
    if not pending:
        return ids
    _check_writable(store.root)
    payloads = [{"store": str(store.root.resolve()), "run_id": rid, "config": cfg.to_dict(), "mixture": mix,
                 "data": str(Path(data.root).resolve()) if getattr(data, "root", None) else None, "checkpoints": checkpoints,
                 "init_checkpoint": str(init_checkpoint) if init_checkpoint is not None else None}
                for rid, cfg, mix in pending]

    on_gpu = resolve_device(pending[0][1]).startswith("cuda")
    cores = os.cpu_count() or 1
    if workers is None:
        workers = 1 if on_gpu else min(len(pending), cores)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if threads_per_worker is None and not on_gpu:
        threads_per_worker = max(1, cores // workers)
    if backend != "local" or workers != 1:
        if getattr(data, "root", None) is None:
            raise ValueError("sweep with worker processes needs token data loaded from a folder (data.root); "
                             "use workers=1 for in-memory data")

    bar = tqdm(total=len(jobs), initial=len(jobs) - len(pending), desc="proxy runs", unit="run", disable=not progress)
    failures: list[tuple[str, str]] = []

    def done(status, rid, err):
        if status == "failed":
            failures.append((rid, err))
        bar.update(1)
        bar.set_postfix(failed=len(failures))

    try:
        if backend == "ray":
            _sweep_ray(payloads, threads_per_worker, address, done, gpus=1.0 if on_gpu else 0.0)
        elif backend != "local":
            raise ValueError(f"unknown sweep backend {backend!r}; choose 'local' or 'ray'")
        elif workers == 1:
            import torch

            before = torch.get_num_threads()
            if threads_per_worker:
                torch.set_num_threads(threads_per_worker)
            try:
                for job in payloads:
                    done(*_run_job({**job, "data": data}))  # in process: reuse the loaded shards
            finally:
                torch.set_num_threads(before)
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=min(workers, len(payloads)), mp_context=mp.get_context("spawn"),
                                     initializer=_init_worker, initargs=(threads_per_worker, os.getpid())) as pool:
                futures = {pool.submit(_run_job, job): job["run_id"] for job in payloads}
                for fut in as_completed(futures):
                    rid = futures[fut]
                    try:
                        done(*fut.result())
                    except BrokenProcessPool as exc:
                        msg = f"worker process died: {exc}"
                        store.write_error(rid, msg)
                        done("failed", rid, msg)
    finally:
        bar.close()
    if failures:
        warnings.warn(f"{len(failures)} of {len(pending)} proxy run(s) failed (details in {ERROR} of each run "
                      f"directory in {store.root}); first: {failures[0][0]}: {failures[0][1]}", stacklevel=2)
    return ids


def _ray_job(job: dict, threads: int | None) -> tuple[str, str, str | None]:
    """One Ray task: the same job a local worker runs, with its torch thread count pinned."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    return _run_job(job)


def _sweep_ray(payloads: list[dict], threads: int | None, address: str | None, done, gpus: float = 0.0) -> None:
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


def summary_table(store) -> pd.DataFrame:
    """One row per finished run: id, preset, size, final mean loss, wall time (a quick look at a store)."""
    store = _as_store(store)
    rows = []
    for rid in store.finished():
        rec = store.read_config(rid)
        final = (rec.get("metrics") or {}).get("final_losses") or {}
        rows.append({"run_id": rid, "preset": (rec.get("config") or {}).get("name"),
                     "model_size": rec.get("model_size"), "seed": rec.get("seed"),
                     "mean_final_loss": sum(final.values()) / len(final) if final else float("nan"),
                     "wall_time_s": (rec.get("metrics") or {}).get("wall_time_s")})
    return pd.DataFrame(rows)
