"""The run table: the contract between proxy training and law fitting.

One row per (run, step, validation domain). Runs trained by mixkit, imported from a user's cluster,
or loaded from a paper's release all enter the analysis through this shape:

    run_id, model_size, step, tokens, domain, loss, seed, config_hash, w:<train domain>...

`model_size` is the non-embedding parameter count (the N of scaling laws). Training-domain weights
are prefixed with ``w:`` so they cannot collide with the other columns.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

WEIGHT_PREFIX = "w:"
REQUIRED_COLUMNS = ("run_id", "model_size", "step", "tokens", "domain", "loss")
OPTIONAL_COLUMNS = {"seed": 0, "config_hash": ""}
# Stored weights are rounded floats: a run's mixture counts as summing to one within this.
WEIGHT_SUM_ATOL = 1e-3


def weight_column(domain: str) -> str:
    return f"{WEIGHT_PREFIX}{domain}"


def weight_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if isinstance(c, str) and c.startswith(WEIGHT_PREFIX)]


def training_domains(df: pd.DataFrame) -> list[str]:
    return [c[len(WEIGHT_PREFIX):] for c in weight_columns(df)]


def validation_domains(df: pd.DataFrame) -> list[str]:
    return sorted(df["domain"].unique().tolist())


def mixture_weights(df: pd.DataFrame) -> pd.DataFrame:
    """Each run's training mixture: runs (index run_id) x training domains (no ``w:`` prefix)."""
    wcols = weight_columns(df)
    if not wcols:
        raise ValueError(f"run table has no training-domain weight columns (named '{WEIGHT_PREFIX}<domain>'); "
                         f"it has {list(df.columns)}")
    W = df.groupby("run_id", sort=False)[wcols].first()
    W.columns = [c[len(WEIGHT_PREFIX):] for c in wcols]
    return W


def select_runs(
    df: pd.DataFrame,
    run_ids: Iterable[str] | str,
    domains: Iterable[str] | str | None = None,
) -> pd.DataFrame:
    """The rows of these runs, in table order; with `domains`, only those domains' columns and rows.

    `domains` keeps the rows of those validation domains and the ``w:`` columns of those training
    domains (a name may be either or both). The result stays a valid run table: a run whose
    mixture puts weight on a dropped training domain would be left with weights that no longer sum
    to one, a mixture it was not trained on, so that raises instead of renormalising. Runs trained
    only on `domains` (the other ``w:`` columns are the zeros of a shared store) pass unchanged.
    Raises ValueError for run ids or domains the table does not have.
    """
    missing = [c for c in ("run_id", "domain") if c not in df.columns]
    if missing:
        raise ValueError(f"not a run table: no column(s) {missing}; it has {list(df.columns)}")
    ids = _names(run_ids, "run_ids")
    absent = sorted(set(ids) - set(df["run_id"]))
    if absent:
        raise ValueError(f"{len(absent)} run id(s) not in the run table, e.g. {absent[:3]}")
    rows = df[df["run_id"].isin(set(ids))]
    if domains is None:
        return rows
    keep = _known_domains(rows, domains)
    dropped = [weight_column(d) for d in training_domains(rows) if d not in keep]
    _check_dropped_weights(rows, dropped, keep)
    return rows[rows["domain"].isin(keep)].drop(columns=dropped)


def _names(values: Iterable[str] | str, what: str) -> list[str]:
    # A lone string is one name, not an iterable of characters.
    names = [values] if isinstance(values, str) else list(values)
    if not names:
        raise ValueError(f"{what} is empty")
    return names


def _known_domains(df: pd.DataFrame, domains: Iterable[str] | str) -> list[str]:
    """`domains` as a list, checked against the table's training and validation domains."""
    names = _names(domains, "domains")
    known = set(training_domains(df)) | set(df["domain"])
    unknown = [d for d in names if d not in known]
    if unknown:
        raise ValueError(f"domain(s) {unknown} are neither training nor validation domains of these runs; they have "
                         f"training domains {training_domains(df)} and validation domains {validation_domains(df)}")
    return names


def _check_dropped_weights(df: pd.DataFrame, dropped: list[str], keep: list[str]) -> None:
    if not dropped:
        return
    weights = df[dropped]
    lost = weights.to_numpy(dtype=float).sum(axis=1) > WEIGHT_SUM_ATOL
    if lost.any():
        runs = sorted(df.loc[lost, "run_id"].unique().tolist())
        used = [c[len(WEIGHT_PREFIX):] for c in dropped if (weights.loc[lost, c] > 0).any()]
        raise ValueError(f"{len(runs)} run(s), e.g. {runs[:3]}, trained on training domain(s) {used} outside {keep}: "
                         "dropping those w: columns would leave weights that do not sum to 1 "
                         "(add the domains, or select only runs trained on these)")


def last_step(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's final recorded step."""
    return df[df["step"] == df.groupby("run_id")["step"].transform("max")]


def at_step(df: pd.DataFrame, step: int | str = "last") -> pd.DataFrame:
    """Rows at `step`: "last" is each run's final recorded step, an int that exact step."""
    if isinstance(step, str) and step == "last":
        return last_step(df)
    try:
        exact = int(step)
    except (TypeError, ValueError):
        raise ValueError(f"step must be 'last' or an int, got {step!r}") from None
    return df[df["step"] == exact]


def target_loss(losses: pd.DataFrame, target: str | Mapping[str, float] = "mean") -> pd.Series:
    """One number per row of a (runs x validation domains) loss frame, named "target".

    `target` is "mean" (the unweighted mean over domains), one validation domain, or
    {domain: weight} for a weighted sum (e.g. the original mixture's shares of its domains).
    """
    if isinstance(target, Mapping):
        unknown = [d for d in target if d not in losses.columns]
        if unknown:
            raise ValueError(f"target weights name validation domain(s) {unknown}; "
                             f"the losses have {list(losses.columns)}")
        weights = pd.Series({str(d): float(w) for d, w in target.items()})
        out = losses[list(weights.index)].mul(weights, axis=1).sum(axis=1)
    elif target == "mean":
        out = losses.mean(axis=1)
    elif target in losses.columns:
        out = losses[target]
    else:
        raise ValueError(f"target must be 'mean', a validation domain {list(losses.columns)} or "
                         f"{{domain: weight}}, got {target!r}")
    return out.rename("target")


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
    if not np.allclose(sums, 1.0, atol=WEIGHT_SUM_ATOL):
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
    df = at_step(df, step)
    if df.empty:
        raise ValueError(f"no runs recorded step {step}")
    W = mixture_weights(df).sort_index()
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


def pivot_curves(
    df: pd.DataFrame,
    domains: Iterable[str] | str | None = None,
    min_step: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every recorded point of every run: (W, L), both indexed by (run_id, step) and sorted.

    The inputs of a law over (step, mixture) such as BiMix: W holds each row's run's training-domain
    weights (no ``w:`` prefix), L its validation-domain losses. `min_step` leaves out earlier steps
    (1 leaves out step 0, the untrained model). `domains`, as in :func:`select_runs`, keeps and
    orders those training domains in W and those validation domains in L. Points missing one of L's
    domains are dropped, as :func:`pivot_losses` drops runs.
    """
    df = validate_table(df)
    df = df[df["step"] >= int(min_step)]
    if df.empty:
        raise ValueError(f"no runs recorded a step >= min_step={min_step}")
    L = df.pivot_table(index=["run_id", "step"], columns="domain", values="loss", aggfunc="mean")
    W = mixture_weights(df)
    if domains is not None:
        keep = _known_domains(df, domains)
        L, W = L[[d for d in keep if d in L.columns]], W[[d for d in keep if d in W.columns]]
        if L.columns.empty or W.columns.empty:
            raise ValueError(f"domains {keep} must name at least one validation and one training domain; the runs have "
                             f"training domains {training_domains(df)} and validation domains {validation_domains(df)}")
    L = L.dropna().sort_index()
    W = W.loc[L.index.get_level_values("run_id")].set_axis(L.index)
    L.columns.name = None
    return W, L
