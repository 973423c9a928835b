"""The run table: the contract between proxy training and law fitting.

One row per (run, step, validation domain). Runs trained by mixkit, imported from a user's cluster,
or loaded from a paper's release all enter the analysis through this shape:

    run_id, model_size, step, tokens, domain, loss, seed, config_hash, w:<train domain>...

`model_size` is the non-embedding parameter count (the N of scaling laws). Training-domain weights
are prefixed with ``w:`` so they cannot collide with the other columns.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

WEIGHT_PREFIX = "w:"
REQUIRED_COLUMNS = ("run_id", "model_size", "step", "tokens", "domain", "loss")
OPTIONAL_COLUMNS = {"seed": 0, "config_hash": ""}


def weight_column(domain: str) -> str:
    return f"{WEIGHT_PREFIX}{domain}"


def weight_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if isinstance(c, str) and c.startswith(WEIGHT_PREFIX)]


def training_domains(df: pd.DataFrame) -> list[str]:
    return [c[len(WEIGHT_PREFIX):] for c in weight_columns(df)]


def validation_domains(df: pd.DataFrame) -> list[str]:
    return sorted(df["domain"].unique().tolist())


def validate_table(df: pd.DataFrame) -> pd.DataFrame:
    """Check the run-table contract and return a copy with optional columns filled in.

    Raises ValueError that names the problem: missing columns, no weight columns, NaN or
    non-positive losses, weights that are negative or do not sum to one per run.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"a run table must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"run table is missing required column(s) {missing}; it has {list(df.columns)}")
    wcols = weight_columns(df)
    if not wcols:
        raise ValueError(
            f"run table has no training-domain weight columns (named '{WEIGHT_PREFIX}<domain>')"
        )
    if df.empty:
        raise ValueError("run table is empty")
    out = df.copy()
    for col, default in OPTIONAL_COLUMNS.items():
        if col not in out.columns:
            out[col] = default
    loss = pd.to_numeric(out["loss"], errors="coerce")
    bad = ~np.isfinite(loss.to_numpy(dtype=float))
    if bad.any():
        rows = out.loc[bad, ["run_id", "step", "domain"]].head(3).to_dict("records")
        raise ValueError(f"run table has {int(bad.sum())} NaN/infinite loss value(s), e.g. {rows}")
    if (loss <= 0).any():
        rows = out.loc[loss <= 0, ["run_id", "step", "domain"]].head(3).to_dict("records")
        raise ValueError(f"run table has {int((loss <= 0).sum())} non-positive loss value(s), e.g. {rows}")
    out["loss"] = loss.astype(float)
    weights = out[wcols].to_numpy(dtype=float)
    if not np.isfinite(weights).all():
        raise ValueError("run table has NaN/infinite mixture weights")
    if (weights < 0).any():
        raise ValueError("run table has negative mixture weights")
    sums = weights.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-3):
        worst = float(sums[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(f"run table mixture weights must sum to 1 per row; found a row summing to {worst:.4f}")
    return out


def pivot_losses(
    df: pd.DataFrame,
    step: int | str = "last",
    model_size: int | None = None,
    domains: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weights and losses of each run at one step: (W runs x train domains, L runs x val domains).

    `step="last"` takes each run's final recorded step; an int takes that exact step (runs that did
    not record it are dropped).
    """
    df = validate_table(df)
    if model_size is not None:
        df = df[df["model_size"] == model_size]
        if df.empty:
            raise ValueError(f"no runs with model_size={model_size}")
    if step == "last":
        last = df.groupby("run_id")["step"].transform("max")
        df = df[df["step"] == last]
    else:
        df = df[df["step"] == int(step)]
        if df.empty:
            raise ValueError(f"no runs recorded step {step}")
    wcols = weight_columns(df)
    W = df.groupby("run_id")[wcols].first()
    W.columns = [c[len(WEIGHT_PREFIX):] for c in wcols]
    L = df.pivot_table(index="run_id", columns="domain", values="loss", aggfunc="mean")
    if domains is not None:
        unknown = [d for d in domains if d not in L.columns]
        if unknown:
            raise ValueError(f"validation domain(s) {unknown} not in the run table; it has {list(L.columns)}")
        L = L[list(domains)]
    L = L.dropna()
    W = W.loc[L.index]
    L.columns.name = None
    return W, L
