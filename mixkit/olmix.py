"""The Olmix run format: a ``ratios.csv`` of mixtures and a ``metrics.csv`` of results.

AI2's Olmix (``olmix fit``) reads two CSV files joined on a run column: ``ratios.csv`` holds one
column per training domain (each row a mixture), ``metrics.csv`` any number of metric columns.
Teams that train their proxies with their own stack can hand mixkit the same pair.

* :func:`read_olmix` reads and checks a pair (:class:`OlmixRuns`: weights and metrics by run);
* :meth:`OlmixRuns.xy` gives the regression arrays for one target (a metric, the mean of several, or
  a weighted sum);
* :meth:`OlmixRuns.run_table` turns the pair into a mixkit run table (metrics become validation
  domains, their values the ``loss`` column), and :func:`write_olmix` writes a run table out as a
  pair, so a mixkit run store exports to Olmix. The writer adds the run table's ``model_size``,
  ``step``, ``tokens`` and ``seed`` as columns of ``metrics.csv`` (read back as metadata, not
  metrics), so the round trip mixkit -> Olmix -> mixkit gives the same table.

Every problem with the input raises a ValueError naming the file, the column and the row (run id).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mixkit.table import WEIGHT_SUM_ATOL, at_step, target_loss, validate_table, weight_column, weight_columns

__all__ = ["METADATA_COLUMNS", "OlmixRuns", "read_olmix", "resolve_target", "write_olmix"]

# Columns of metrics.csv that describe the run rather than measure it (written by write_olmix).
METADATA_COLUMNS = ("model_size", "step", "tokens", "seed", "config_hash")
RUN_COLUMNS = ("run", "run_id")


@dataclass(frozen=True)
class OlmixRuns:
    """Mixtures and metrics of the same runs (index: run id, in ratios.csv's order).

    ``weights``: runs x training domains (rows sum to 1); ``metrics``: runs x metric columns;
    ``metadata``: runs x the METADATA_COLUMNS present; ``renormalized_by``: the largest
    |row sum - 1| that renormalisation removed (0 when none was needed or asked for).
    """

    weights: pd.DataFrame
    metrics: pd.DataFrame
    metadata: pd.DataFrame
    source: str
    renormalized_by: float = 0.0

    @property
    def domains(self) -> list[str]:
        return list(self.weights.columns)

    def xy(self, target: str | Sequence[str], target_weights: Sequence[float] | None = None
           ) -> tuple[pd.DataFrame, pd.Series]:
        """(X runs x domains, y) for `target` (see :func:`resolve_target`)."""
        return self.weights, resolve_target(self.metrics, target, target_weights, self.source)

    def run_table(self, model_size: int = 1, step: int = 0, tokens: int | None = None) -> pd.DataFrame:
        """A mixkit run table: one row per (run, metric), metric values in ``loss``. The metadata
        columns read from metrics.csv win over the defaults given here."""
        _refuse_nan(self.metrics, list(self.metrics.columns), self.source)
        meta = self.metadata.reindex(columns=list(METADATA_COLUMNS))
        defaults = {"model_size": model_size, "step": step, "tokens": tokens, "seed": 0, "config_hash": ""}
        meta = meta.fillna({k: v for k, v in defaults.items() if v is not None})
        if tokens is None and "tokens" not in self.metadata.columns:
            meta["tokens"] = np.nan
        long = self.metrics.rename_axis("run_id").reset_index().melt(id_vars="run_id", var_name="domain",
                                                                     value_name="loss")
        weights = self.weights.rename(columns=weight_column).rename_axis("run_id").reset_index()
        df = long.merge(meta.rename_axis("run_id").reset_index(), on="run_id").merge(weights, on="run_id")
        cols = ["run_id", "model_size", "step", "tokens", "domain", "loss", "seed", "config_hash",
                *[weight_column(d) for d in self.domains]]
        return validate_table(df[cols])


def resolve_target(metrics: pd.DataFrame, target: str | Sequence[str], weights: Sequence[float] | None = None,
                   source: str = "metrics") -> pd.Series:
    """One number per run from metric columns: `target` a column name, or several names (their mean,
    or their sum weighted by `weights`). Missing columns and NaNs are errors naming them."""
    names = [target] if isinstance(target, str) else [str(t) for t in target]
    if not names:
        raise ValueError(f"{source}: no target column given")
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: target column(s) {sorted({n for n in names if names.count(n) > 1})} named twice")
    missing = [n for n in names if n not in metrics.columns]
    if missing:
        raise ValueError(f"{source}: target column(s) {missing} not found; the metric columns are {list(metrics.columns)}")
    if weights is not None:
        w = np.asarray(weights, dtype=float).ravel()
        if len(w) != len(names) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"target weights must be {len(names)} finite non-negative numbers, not all zero "
                             f"(one per target column {names}), got {list(weights)}")
    _refuse_nan(metrics, names, source)
    values = metrics[names].astype(float)
    y = target_loss(values, "mean" if weights is None else dict(zip(names, w)))
    label = names[0] if len(names) == 1 else ("mean(" if weights is None else "weighted(") + ",".join(names) + ")"
    return y.rename(label)


def _refuse_nan(metrics: pd.DataFrame, names: list[str], source: str) -> None:
    for n in names:
        bad = metrics.index[~np.isfinite(metrics[n].to_numpy(dtype=float))]
        if len(bad):
            raise ValueError(f"{source}: column {n!r} has {len(bad)} missing or non-finite value(s), first at run "
                             f"{bad[0]!r}")


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    try:
        # Hashes stay text ("0123" is not 123).
        frame = pd.read_csv(path, dtype={"config_hash": str})
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser and empty-file errors
        raise ValueError(f"{path}: not a readable CSV ({exc})") from None
    if frame.empty:
        raise ValueError(f"{path}: no rows")
    return frame


def _run_index(frame: pd.DataFrame, path: Path, run_column: str | None) -> pd.DataFrame:
    col = run_column or next((c for c in RUN_COLUMNS if c in frame.columns), None)
    if col is None or col not in frame.columns:
        wanted = repr(run_column) if run_column else f"one of {list(RUN_COLUMNS)}"
        raise ValueError(f"{path}: no run column {wanted}; it has {list(frame.columns)} (pass run_column=...)")
    ids = frame[col]
    if ids.isna().any():
        raise ValueError(f"{path}: column {col!r} is empty on row {int(np.flatnonzero(ids.isna())[0]) + 2}")
    ids = ids.astype(str)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise ValueError(f"{path}: run {dup.iloc[0]!r} appears more than once in column {col!r}")
    # Olmix's files carry no config hash: keep it as text when mixkit wrote one.
    if "config_hash" in frame.columns:
        frame = frame.assign(config_hash=[("" if pd.isna(v) else str(v)) for v in frame["config_hash"]])
    return frame.drop(columns=[col]).set_axis(pd.Index(ids, name="run"), axis=0)


def _numeric(frame: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    out = {}
    for col in frame.columns:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            run = frame.index[bad.to_numpy()][0]
            raise ValueError(f"{path}: {what} column {col!r} is not numeric at run {run!r} "
                             f"(value {frame.loc[run, col]!r})")
        out[col] = values.astype(float)
    return pd.DataFrame(out, index=frame.index)


def _check_weights(W: pd.DataFrame, path: Path, renormalize: bool) -> tuple[pd.DataFrame, float]:
    if W.shape[1] < 2:
        raise ValueError(f"{path}: needs at least two domain columns besides the run column, got {list(W.columns)}")
    for col in W.columns:
        v = W[col].to_numpy()
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            run = W.index[bad][0]
            raise ValueError(f"{path}: domain column {col!r} has a negative or missing weight at run {run!r} "
                             f"({W.loc[run, col]!r}; {int(bad.sum())} such row(s))")
    sums = W.sum(axis=1).to_numpy()
    off = np.abs(sums - 1.0)
    if not renormalize and (off > WEIGHT_SUM_ATOL).any():
        i = int(np.argmax(off > WEIGHT_SUM_ATOL))
        raise ValueError(f"{path}: the weights of run {W.index[i]!r} sum to {sums[i]:.6g}, not 1 (within "
                         f"{WEIGHT_SUM_ATOL:g}; {int((off > WEIGHT_SUM_ATOL).sum())} such row(s)); pass "
                         "renormalize=True (--renormalize) to divide each row by its sum")
    if (sums <= 0).any():
        raise ValueError(f"{path}: the weights of run {W.index[int(np.argmax(sums <= 0))]!r} are all zero")
    if not renormalize:
        return W, 0.0
    return W.div(sums, axis=0), float(off.max())


def read_olmix(ratios: str | Path, metrics: str | Path, run_column: str | None = None,
               renormalize: bool = False) -> OlmixRuns:
    """Read and check an Olmix ratios/metrics pair, joined on the run column.

    `run_column` defaults to the first of "run", "run_id" that the files have. Both files must
    hold the same runs. Weights must be numeric, non-negative and sum to 1 per row within 1e-3;
    with `renormalize` each row is divided by its sum instead (``renormalized_by`` says by how much
    the sums were off). Metric columns must be numeric; NaNs are refused where a metric is used
    (:meth:`OlmixRuns.xy`, :meth:`OlmixRuns.run_table`).
    """
    rpath, mpath = Path(ratios), Path(metrics)
    W = _numeric(_run_index(_read_csv(rpath, "ratios"), rpath, run_column), rpath, "domain")
    M = _run_index(_read_csv(mpath, "metrics"), mpath, run_column)
    meta_cols = [c for c in METADATA_COLUMNS if c in M.columns]
    meta, M = M[meta_cols], _numeric(M.drop(columns=meta_cols), mpath, "metric")
    only_r = [r for r in W.index if r not in M.index]
    only_m = [r for r in M.index if r not in W.index]
    if only_r or only_m:
        raise ValueError(f"run ids differ between {rpath} and {mpath}: {len(only_r)} only in ratios "
                         f"(e.g. {only_r[:3]}), {len(only_m)} only in metrics (e.g. {only_m[:3]})")
    W, off = _check_weights(W, rpath, renormalize)
    if M.shape[1] == 0:
        raise ValueError(f"{mpath}: no metric columns besides the run column and metadata {meta_cols}")
    return OlmixRuns(W, M.loc[W.index], meta.loc[W.index], f"{mpath}", off)


def write_olmix(table: pd.DataFrame, folder: str | Path, step: int | str = "last", run_column: str = "run"
                ) -> tuple[Path, Path]:
    """Write a run table at `step` ("last": each run's final step) as ``ratios.csv`` and
    ``metrics.csv`` in `folder`: one row per run, the validation domains' losses as metric columns,
    and the runs' model_size, step, tokens and seed as metadata columns of metrics.csv."""
    df = at_step(validate_table(table), step)
    if df.empty:
        raise ValueError(f"no runs recorded step {step}")
    wcols = weight_columns(df)
    runs = df.groupby("run_id", sort=False)
    W = runs[wcols].first().rename(columns=lambda c: c[len("w:"):])
    L = df.pivot_table(index="run_id", columns="domain", values="loss", aggfunc="first").loc[W.index]
    meta = runs[list(METADATA_COLUMNS)].first()
    M = pd.concat([L, meta], axis=1)
    clash = [c for c in L.columns if c in METADATA_COLUMNS or c == run_column]
    if clash:
        raise ValueError(f"validation domain(s) {clash} clash with metrics.csv's reserved columns")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rpath, mpath = folder / "ratios.csv", folder / "metrics.csv"
    W.rename_axis(run_column).to_csv(rpath)
    M.rename_axis(run_column).to_csv(mpath)
    return rpath, mpath


def weights_frame(weights: Mapping[str, float] | pd.Series, run: str = "proposed") -> pd.DataFrame:
    """One mixture as a one-row ratios frame (what `mixkit fit` writes for its proposal)."""
    return pd.DataFrame([dict(weights)], index=pd.Index([run], name="run"))
