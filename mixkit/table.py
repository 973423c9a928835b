"""The run table: the contract between proxy training and law fitting.

One row per (run, step, validation domain). Runs trained by mixkit, imported from a user's cluster,
or loaded from a paper's release all enter the analysis through this shape:

    run_id, model_size, step, tokens, domain, loss, seed, config_hash, w:<train domain>...

`model_size` is the non-embedding parameter count (the N of scaling laws). Training-domain weights
are prefixed with ``w:`` so they cannot collide with the other columns.

Optional ``non_embedding_params`` (:data:`NON_EMBEDDING_COLUMN`): tables whose ``model_size`` is a
release's *nominal* size (the "70M" of a run name, total parameters) carry the non-embedding N here
when it is known (NaN when not); the size laws prefer it (see ``mixkit.laws.nested_prediction``).
"""

from __future__ import annotations

import warnings

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

WEIGHT_PREFIX = "w:"
REQUIRED_COLUMNS = ("run_id", "model_size", "step", "tokens", "domain", "loss")
OPTIONAL_COLUMNS = {"seed": 0, "config_hash": ""}
# Non-embedding parameters where model_size is a nominal size; checked only when present.
NON_EMBEDDING_COLUMN = "non_embedding_params"
# Stored weights are rounded floats: a run's mixture counts as summing to one within this.
WEIGHT_SUM_ATOL = 1e-3
# The rows of one run carry one mixture; weights further apart than this are two mixtures (a CSV
# round trip keeps floats exactly, so this only absorbs arithmetic done on a table).
MIXTURE_ATOL = 1e-9


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
    """Check the run-table contract and return a copy with proper dtypes and optional columns filled in.

    The rules (each broken one raises a ValueError naming the column, the run and the row index of
    an example, and how many rows break it):

    - the required columns exist, at least one ``w:`` column, at least one row;
    - ``run_id`` and ``domain`` are present on every row;
    - ``step`` and ``seed`` are non-negative integers, ``model_size`` a positive integer, ``tokens``
      a non-negative integer or missing (NaN: some releases do not state them); text such as "800"
      (a CSV) is read as the number, text that is no integer ("ten", "8.5") is an error;
    - ``loss`` is finite and positive;
    - weights are finite, non-negative and sum to 1 per row within ``WEIGHT_SUM_ATOL``;
    - (run_id, step, domain) is unique: a repeated row is an error, never averaged;
    - each run has one mixture (its weights within ``MIXTURE_ATOL`` on every row), one model size
      and one seed; ``non_embedding_params``, when present, one positive integer or NaN per run.

    The copy has int64 ``step``, ``model_size`` and ``seed``, int64 ``tokens`` (float64 when some
    are missing), float64 ``loss`` and weights, str ``config_hash``: steps read as text compare as
    numbers, so "last step" is the largest step.
    """
    wcols = _check_shape(df)
    out = df.copy()
    for col, default in OPTIONAL_COLUMNS.items():
        if col not in out.columns:
            out[col] = default
    for col in ("run_id", "domain"):
        _refuse(out, out[col].isna().to_numpy(), col, "missing value(s)")
    out["model_size"] = _integers(out, "model_size", minimum=1)
    out["step"] = _integers(out, "step", minimum=0)
    out["tokens"] = _integers(out, "tokens", minimum=0, allow_missing=True)
    out["seed"] = _integers(out, "seed", minimum=0)
    if NON_EMBEDDING_COLUMN in out.columns:
        out[NON_EMBEDDING_COLUMN] = _integers(out, NON_EMBEDDING_COLUMN, minimum=1, allow_missing=True)
    out["loss"] = _losses(out)
    for col in wcols:
        out[col] = _weights(out, col)
    _check_weight_sums(out, wcols)
    out["config_hash"] = out["config_hash"].fillna("").astype(str)
    _check_unique_rows(out)
    _check_one_per_run(out, ["model_size"], "model size", 0.0)
    _check_one_per_run(out, ["seed"], "seed", 0.0)
    if NON_EMBEDDING_COLUMN in out.columns:
        _check_one_per_run(out.fillna({NON_EMBEDDING_COLUMN: -1}), [NON_EMBEDDING_COLUMN], "non-embedding size", 0.0)
    _check_one_per_run(out, wcols, "mixture", MIXTURE_ATOL)
    return out


def _check_shape(df) -> list[str]:
    """The weight columns of a DataFrame that has the required columns and rows."""
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
    return wcols


def _refuse(df: pd.DataFrame, bad: np.ndarray, column: str, problem: str, value=None) -> None:
    """Raise naming `column`, how many rows are `bad`, and the value, row index and run of the first."""
    if not bad.any():
        return
    pos = int(np.flatnonzero(bad)[0])
    shown = _plain(df[column].iloc[pos] if value is None else value)
    raise ValueError(f"run table column {column!r} has {int(bad.sum())} {problem}, e.g. {shown!r} at row "
                     f"{_plain(df.index[pos])!r} (run {_plain(df['run_id'].iloc[pos])!r})")


def _plain(value):
    """A numpy scalar as the Python value, so messages read 1.5, not np.float64(1.5)."""
    return value.item() if isinstance(value, np.generic) else value


def _integers(df: pd.DataFrame, column: str, minimum: int, allow_missing: bool = False) -> pd.Series:
    """`column` as int64 (float64 when missing values are allowed and present), checked."""
    raw = df[column]
    if raw.dtype == bool:
        _refuse(df, np.ones(len(df), dtype=bool), column, "boolean value(s) (integers expected)")
    num = pd.to_numeric(raw, errors="coerce")
    missing = raw.isna().to_numpy()
    _refuse(df, num.isna().to_numpy() & ~missing, column, "value(s) that are not numbers")
    if not allow_missing:
        _refuse(df, missing, column, "missing value(s)")
    vals = num.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        fractional = ~missing & (~np.isfinite(vals) | (vals != np.round(vals)))
        _refuse(df, fractional, column, "value(s) that are not integers")
        _refuse(df, ~missing & (vals < minimum), column, f"value(s) below {minimum}")
    if missing.any():
        return num.astype(float)
    return num.astype(np.int64)


def _losses(df: pd.DataFrame) -> pd.Series:
    loss = pd.to_numeric(df["loss"], errors="coerce").astype(float)
    vals = loss.to_numpy()
    _refuse(df, ~np.isfinite(vals), "loss", "NaN/infinite loss value(s) (text that is no number counts as NaN)")
    _refuse(df, vals <= 0, "loss", "non-positive loss value(s)")
    return loss


def _weights(df: pd.DataFrame, column: str) -> pd.Series:
    w = pd.to_numeric(df[column], errors="coerce").astype(float)
    vals = w.to_numpy()
    _refuse(df, ~np.isfinite(vals), column, "row(s) of NaN/infinite mixture weights (or text that is no number)")
    _refuse(df, vals < 0, column, "row(s) of negative mixture weights")
    return w


def _check_weight_sums(df: pd.DataFrame, wcols: list[str]) -> None:
    sums = df[wcols].to_numpy(dtype=float).sum(axis=1)
    bad = np.abs(sums - 1.0) > WEIGHT_SUM_ATOL
    if bad.any():
        pos = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(f"run table mixture weights must sum to 1 per row (within {WEIGHT_SUM_ATOL:g}); "
                         f"{int(bad.sum())} row(s) do not, e.g. row {_plain(df.index[pos])!r} "
                         f"(run {_plain(df['run_id'].iloc[pos])!r}) "
                         f"sums to {sums[pos]:.4f} over columns {wcols}")


def _check_unique_rows(df: pd.DataFrame) -> None:
    keys = ["run_id", "step", "domain"]
    dup = df.duplicated(keys, keep=False).to_numpy()
    if dup.any():
        pos = np.flatnonzero(dup)
        first = df.iloc[pos[0]]
        same = pos[(df[keys].iloc[pos] == first[keys]).all(axis=1).to_numpy()]
        rows = [_plain(df.index[p]) for p in same]
        raise ValueError(f"run table columns {keys} must be unique per row: {len(pos)} row(s) repeat a "
                         f"(run, step, domain), e.g. rows {rows} are run {_plain(first['run_id'])!r} step "
                         f"{first['step']} domain {_plain(first['domain'])!r} (repeated rows are not averaged: "
                         "drop the copies, or give a second run its own run_id)")


def _check_one_per_run(df: pd.DataFrame, cols: list[str], what: str, atol: float) -> None:
    """Every row of a run carries the same `cols` (its mixture, its model size) as its first row."""
    vals = df[cols].to_numpy(dtype=float)
    first = df.groupby("run_id", sort=False)[cols].transform("first").to_numpy(dtype=float)
    bad = (np.abs(vals - first) > atol).any(axis=1)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        run = df["run_id"].iloc[pos]
        p0 = int(np.flatnonzero((df["run_id"] == run).to_numpy())[0])
        col = cols[int(np.argmax(np.abs(vals[pos] - first[pos]) > atol))]
        a, b = (f"{_plain(df[col].iloc[p])!r} at row {_plain(df.index[p])!r}" for p in (p0, pos))
        raise ValueError(f"run table: run {_plain(run)!r} has two different values of its {what} (column {col!r}): "
                         f"{a} and {b}; {int(bad.sum())} row(s) differ from their run's first row (a run id names "
                         "one run: give the other run its own run_id)")


def warn_dynamic_runs(df: pd.DataFrame, where: str) -> None:
    """Warn when `df` holds runs whose mixture changed while they trained (a `mixing` column value).

    Their weight columns hold the weights averaged over their steps (for DoReMi: its loss weights
    over uniform batches), so a law fitted on them treats a schedule as if it were a fixed mixture.
    """
    if "mixing" not in df.columns:
        return
    kinds = df.loc[df["mixing"].notna(), ["run_id", "mixing"]].drop_duplicates("run_id")
    if len(kinds):
        warnings.warn(f"{where}: {len(kinds)} run(s) trained on a changing mixture "
                      f"({sorted(kinds['mixing'].astype(str).unique())}) are included with their average weights; "
                      "keep table[table['mixing'].isna()] to use fixed mixtures only", UserWarning, stacklevel=3)


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
    warn_dynamic_runs(df, "pivot_losses")
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
    warn_dynamic_runs(df, "pivot_curves")
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
