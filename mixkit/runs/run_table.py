"""The run table of a store (`mixkit.table` schema), and runs trained elsewhere brought into one."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import pandas as pd

from mixkit.paths import json_ready
from mixkit.runs.store import CONFIG, CURVE, DONE, ERROR, as_store, finish_run
from mixkit.table import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, mixture_weights, validate_table, weight_columns

TABLE_COLUMNS = list(REQUIRED_COLUMNS) + list(OPTIONAL_COLUMNS)


def store_summary(store) -> dict[str, int]:
    """{"runs": finished runs, "failed": failed runs (error.json without DONE)} for `mixkit runs --json`."""
    store = as_store(store)
    return {"runs": len(store.finished()), "failed": len(store.failed())}


def load_runs(store, details: bool = False) -> pd.DataFrame:
    """The run table (mixkit.table schema) of every finished run; unfinished directories are skipped.

    A training domain missing from some runs' mixtures gets weight 0 there. `details=True` adds
    columns from each run's config.json (preset, d_model, n_layers, lr, steps, init_checkpoint_id,
    wall_time_s) for analyses that split runs by them, e.g. continual runs by their start.
    """
    store = as_store(store)
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
    they are. The whole table is checked (:func:`mixkit.table.validate_table`) and every run's
    files prepared before the first is written, so a bad row anywhere imports nothing. Returns the
    imported run ids.
    """
    store = as_store(store)
    df = _read_table(table)
    df["run_id"] = df["run_id"].astype(str)
    pending = []
    for rid, rows in df.groupby("run_id", sort=False):
        d = store.run_dir(_dir_name(rid))
        if not (d / DONE).is_file():
            pending.append((rid, d, _run_files(rid, rows)))
    by_folder: dict[Path, str] = {}
    for rid, d, _ in pending:
        if d in by_folder:
            raise ValueError(f"run ids {by_folder[d]!r} and {rid!r} map to the same run folder {d}; rename one")
        by_folder[d] = rid
    for _, d, files in pending:
        d.mkdir(parents=True, exist_ok=True)
        finish_run(d, files)
    return [rid for rid, _, _ in pending]


def _read_table(table) -> pd.DataFrame:
    """The validated run table of a DataFrame or CSV path; errors name the file."""
    if not isinstance(table, (str, os.PathLike)):
        return validate_table(table)
    path = Path(table)
    if not path.is_file():
        raise FileNotFoundError(f"run table {path} does not exist")
    try:
        raw = pd.read_csv(path, dtype={"run_id": str, "config_hash": str, "domain": str})
        return validate_table(raw)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:  # EmptyDataError is a ValueError
        raise ValueError(f"run table {path}: {err}") from None


def _run_files(rid: str, rows: pd.DataFrame) -> dict[str, str]:
    """config.json and curve.csv of one imported run (validated rows: one mixture, size and seed)."""
    first = rows.iloc[0]
    record = {"run_id": rid, "imported": True, "seed": int(first["seed"]), "config_hash": str(first["config_hash"]),
              "model_size": int(first["model_size"]), "config": {}, "metrics": {},
              "mixture": {dom: float(w) for dom, w in mixture_weights(rows).iloc[0].items()}}
    return {CONFIG: json.dumps(json_ready(record), indent=1), CURVE: rows.to_csv(index=False)}


def _dir_name(rid: str) -> str:
    safe = all(c.isalnum() or c in "-_." for c in rid) and 0 < len(rid) <= 100 and not rid.startswith(".")
    return rid if safe else "imported-" + hashlib.sha256(rid.encode("utf-8")).hexdigest()[:16]


def summary_table(store) -> pd.DataFrame:
    """One row per finished run: id, preset, size, final mean loss, wall time (a quick look at a store)."""
    store = as_store(store)
    rows = []
    for rid in store.finished():
        rec = store.read_config(rid)
        final = (rec.get("metrics") or {}).get("final_losses") or {}
        rows.append({"run_id": rid, "preset": (rec.get("config") or {}).get("name"),
                     "model_size": rec.get("model_size"), "seed": rec.get("seed"),
                     "mean_final_loss": sum(final.values()) / len(final) if final else float("nan"),
                     "wall_time_s": (rec.get("metrics") or {}).get("wall_time_s")})
    return pd.DataFrame(rows)
