"""The run store: one directory per proxy run, written so that a kill at any moment loses nothing.

Layout of a store:

    <store>/<run_id>/lock          flock-ed by the process training it (mixkit.runs.locks); removed
                                   when it stops, freed by the kernel when it dies
    <store>/<run_id>/config.json   resolved config, mixture, data fingerprint, metrics   } written only
    <store>/<run_id>/curve.csv     run-table rows of this run (mixkit.table schema)      } when the run
    <store>/<run_id>/weights.csv   a phased or policy run's weights per step (step,      } finishes,
                                   domain, weight, rows)                                 }
    <store>/<run_id>/model.pt      final weights (only when checkpoints are asked for)   }
    <store>/<run_id>/DONE          renamed in last: sha256 of the files above; the only } atomically
                                   sign a run is finished (a mismatch means corrupt: re-run, never loaded)
    <store>/<run_id>/error.json    a failed run's error (the run is retried by the next sweep)

The run id (`mixkit.proxy.identity.run_id`) is a content hash of (config, mixture, seed, data
fingerprint, starting checkpoint), so the same run always lands in the same directory.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pandas as pd

from mixkit.paths import atomic_write_text, json_ready, sha256_file, write_json
from mixkit.proxy import RunResult
from mixkit.table import weight_column

DONE, CONFIG, CURVE, ERROR, LOCK, CHECKPOINT = "DONE", "config.json", "curve.csv", "error.json", "lock", "model.pt"
WEIGHTS = "weights.csv"


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

    def write_result(self, result: RunResult) -> Path:
        """Record a finished RunResult: config.json and curve.csv atomically, then DONE last."""
        d = self.run_dir(result.run_id)
        d.mkdir(parents=True, exist_ok=True)
        (d / ERROR).unlink(missing_ok=True)
        files = {CONFIG: json.dumps(json_ready(_result_record(result)), indent=1),
                 CURVE: result_rows(result).to_csv(index=False)}
        if result.schedule is not None:
            files[WEIGHTS] = result.weights_history.to_csv(index=False)
        finish_run(d, files)
        return d

    def read_weights(self, rid: str) -> pd.DataFrame:
        """A finished run's weights per step (step, domain, weight, rows): weights.csv of a phased or
        policy run; a fixed run's mixture on every step (rows not recorded: NaN) otherwise."""
        if not self.is_finished(rid):
            raise FileNotFoundError(f"run {rid} is not finished in {self.root}")
        path = self.run_dir(rid) / WEIGHTS
        if path.is_file():
            return pd.read_csv(path, dtype={"domain": str})
        rec = self.read_config(rid)
        steps = int((rec.get("config") or {}).get("steps") or 0)
        mix = rec.get("mixture") or {}
        return pd.DataFrame([{"step": s, "domain": d, "weight": float(w), "rows": float("nan")}
                             for s in range(1, steps + 1) for d, w in mix.items()],
                            columns=["step", "domain", "weight", "rows"])

    def write_error(self, rid: str, error: str, job: dict | None = None) -> Path:
        d = self.run_dir(rid)
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / ERROR, {"run_id": rid, "error": error, "job": job or {}})
        return d


def as_store(store) -> RunStore:
    return store if isinstance(store, RunStore) else RunStore(store)


def result_rows(result: RunResult) -> pd.DataFrame:
    """A finished run's run-table rows (`mixkit.table`): one per (step, validation domain), its
    mixture as w:<domain> columns."""
    out = pd.DataFrame({
        "run_id": result.run_id,
        "model_size": int(result.n_non_embedding),
        "step": result.curve["step"].astype(int).to_numpy(),
        "tokens": result.curve["tokens"].astype(float).to_numpy(),
        "domain": result.curve["domain"].astype(str).to_numpy(),
        "loss": result.curve["loss"].astype(float).to_numpy(),
        "seed": int(result.config.seed),
        "config_hash": result.config_hash,
    })
    weights = result.mixture.as_array(result.domains)
    for d, w in zip(result.domains, weights):
        out[weight_column(d)] = float(w)
    if result.schedule is not None:
        # A phased or policy run's w: columns are its average weights; this names what varied.
        out["mixing"] = result.mixture.name or "dynamic"
    return out


def _result_record(result: RunResult) -> dict:
    """config.json of a finished run: what it was, how it resolved, what it measured."""
    return {
        "run_id": result.run_id,
        "config": result.config.to_dict(),
        "resolved": {"device": result.device, "precision": result.precision},
        "config_hash": result.config_hash,
        "seed": int(result.config.seed),
        "mixture": result.mixture.to_dict(),
        "mixture_name": result.mixture.name,
        "schedule": result.schedule,
        "data_fingerprint": result.data_fingerprint,
        "domains": list(result.domains),
        "init_checkpoint_id": result.init_checkpoint_id,
        "model_size": int(result.n_non_embedding),
        "metrics": result.metrics(),
        "train_loss": result.train_loss.to_dict("records"),
    }


def finish_run(d: Path, texts: dict[str, str]) -> None:
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


STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def storage_error_message(exc: OSError, where: Path) -> str:
    """A clear sentence for the storage failures a user can act on (full disk, no permission)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device holding {where} ({exc}); free space or point the store elsewhere"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to {where} ({exc}); check its permissions or choose a writable store"
    return f"cannot write to {where}: {exc}"


def check_writable(root: Path) -> None:
    """Create the store folder and write a probe file in it, so a sweep fails before training, with
    a clear message, when the store cannot take results."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise OSError(exc.errno, storage_error_message(exc, root)) from exc
