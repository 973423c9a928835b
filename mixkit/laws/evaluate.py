"""Held-out comparison of laws, and the seed-noise floor every error should be read against.

Nothing is ever scored on points it was fitted on: every prediction in :func:`compare_laws` comes
from a fit that did not see that mixture (or that model size, for ``cv="cross_scale"``).
"""

from __future__ import annotations

import time
import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import clone

from mixkit.progress import progress_bar
from mixkit.table import at_step, pivot_losses, validate_table, weight_columns

from .fitting import FitWarning
from .pipeline import mixture_keys

METRIC_COLUMNS = ["mae", "rel_err", "r2", "spearman"]


def noise_floor(values) -> float:
    """Mean absolute deviation from their mean of repeated-seed values of one quantity.

    `values`: one number per seed (e.g. a mixture's target loss in each seed's run), at least two,
    finite. The result is the spread that seed noise alone puts on that number: a law's held-out
    error at this level is as good as any law can do on those runs.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"noise_floor takes a 1-D sequence of values, got shape {arr.shape}")
    if arr.size < 2:
        raise ValueError(f"a noise floor needs the values of at least 2 seeds, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("noise_floor values contain NaN or infinite values")
    return float(np.mean(np.abs(arr - arr.mean())))


def seed_noise_floor(table: pd.DataFrame, step: int | str = "last", decimals: int = 6) -> pd.DataFrame:
    """Mean absolute deviation of the loss across runs of the same mixture (different seeds).

    Runs are grouped by (model size, mixture, validation domain) at `step` ("last" = each run's
    final step); for each group of 2+ runs the absolute deviations from the group mean are
    averaged (:func:`noise_floor`), then averaged over groups per domain. Returns columns domain,
    noise_mad, noise_rel (noise_mad / mean loss), n_groups, n_runs; empty when no mixture was run
    more than once.
    """
    df = at_step(validate_table(table), step)
    df = df.assign(mixture=mixture_keys(df, decimals))
    per_run = df.groupby(["domain", "model_size", "mixture", "run_id"])["loss"].mean()
    rows = [_domain_noise(dom, losses) for dom, losses in per_run.groupby(level="domain")]
    return pd.DataFrame([r for r in rows if r is not None], columns=["domain", "noise_mad", "noise_rel", "n_groups", "n_runs"])


def _domain_noise(domain, per_run: pd.Series) -> dict | None:
    """One domain's row of seed_noise_floor from its per-run losses; None without repeated mixtures."""
    repeats = [g.to_numpy() for _, g in per_run.groupby(level=["model_size", "mixture"]) if len(g) >= 2]
    if not repeats:
        return None
    mads = [noise_floor(losses) for losses in repeats]
    level = [float(losses.mean()) for losses in repeats]
    return {"domain": domain, "noise_mad": float(np.mean(mads)), "noise_rel": float(np.mean(mads) / np.mean(level)),
            "n_groups": len(mads), "n_runs": int(sum(len(losses) for losses in repeats))}


def _metrics(obs: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - obs
    ss_tot = float(np.sum((obs - obs.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
    rho = float(spearmanr(obs, pred).statistic) if len(obs) > 2 and np.ptp(obs) > 0 and np.ptp(pred) > 0 else float("nan")
    return {"mae": float(np.mean(np.abs(err))), "rel_err": float(np.mean(np.abs(err) / obs)), "r2": r2, "spearman": rho}


def _splits(cv, groups: np.ndarray, sizes: np.ndarray | None, random_state) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(groups)
    if isinstance(cv, str) and cv == "loo":
        return [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in pd.unique(groups)]
    if isinstance(cv, str) and cv == "cross_scale":
        if sizes is None or len(np.unique(sizes)) < 2:
            raise ValueError("cv='cross_scale' needs runs of at least two model sizes (fit on the smaller, score on the largest)")
        big = sizes == np.max(sizes)
        return [(np.flatnonzero(~big), np.flatnonzero(big))]
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        uniq = pd.unique(groups)
        if not 2 <= cv <= len(uniq):
            raise ValueError(f"k-fold needs 2 <= k <= number of mixtures ({len(uniq)}), got {cv}")
        perm = np.random.default_rng(random_state).permutation(len(uniq))
        folds = np.array_split(uniq[perm], int(cv))
        return [(np.flatnonzero(~np.isin(groups, f)), np.flatnonzero(np.isin(groups, f))) for f in folds]
    if isinstance(cv, str):
        raise ValueError(f"unknown cv {cv!r}: use 'loo', 'cross_scale', an int k or (train, test) index pairs")
    splits = [(np.asarray(tr, dtype=int), np.asarray(te, dtype=int)) for tr, te in cv]
    for tr, te in splits:
        if np.intersect1d(tr, te).size:
            raise ValueError("a cv split scores points it was fitted on (train and test indices overlap)")
        if len(te) == 0 or len(tr) == 0 or max(tr.max(), te.max()) >= n:
            raise ValueError("cv splits need non-empty train/test indices within the data")
    return splits


def _from_table(table, step, model_size):
    df = validate_table(table)
    if model_size is not None:
        df = df[df["model_size"] == model_size]
        if df.empty:
            raise ValueError(f"no runs with model_size={model_size}")
    W, L = pivot_losses(df, step=step)
    first = df.groupby("run_id").first()
    sizes = first.loc[W.index, "model_size"].to_numpy(dtype=float)
    groups = mixture_keys(first.loc[W.index, weight_columns(df)]).to_numpy()
    return W, L, groups, sizes, df


def compare_laws(
    data,
    laws: Mapping[str, object],
    cv="loo",
    *,
    step: int | str = "last",
    model_size: int | None = None,
    groups: Sequence | None = None,
    sizes: Sequence | None = None,
    aggregate: Mapping[str, float] | Sequence[float] | None = None,
    random_state=0,
    return_predictions: bool = False,
    progress: bool = True,
):
    """Held-out accuracy of several laws on the same data: a tidy DataFrame, one row per law and target.

    data: a run table (losses at `step`, optionally one `model_size`) or a tuple (X, y) with X
        (n, d) inputs and y (n,) or (n, m) losses (DataFrames keep the names).
    laws: {name: estimator}; each is cloned and fitted once per fold and target column.
    cv: "loo" (leave one mixture out: runs with identical weights, e.g. seeds, go out together),
        an int k (k folds over mixtures), "cross_scale" (fit on the smaller model sizes, score on the
        largest) or an iterable of (train_idx, test_idx) pairs. A table holding several model sizes
        is evaluated size by size unless cv="cross_scale".
    groups / sizes: for (X, y) data, the mixture id and model size of each row (defaults: every
        row its own mixture; no sizes).
    aggregate: validation-domain proportions; adds a target "overall" = sum_i s_i L_i computed from
        the per-domain out-of-fold predictions.

    Columns: law, target, [model_size,] mae, rel_err (mean |pred - obs| / obs), r2, spearman,
    n_test, n_folds, fit_time_s (mean seconds per fit), n_fit_warnings, and noise_mad (the seed-noise
    floor of that domain, NaN when no mixture was repeated). With return_predictions=True also the
    long table of out-of-fold predictions (law, target, row, obs, pred, fold).
    """
    if not laws:
        raise ValueError("no laws to compare")
    X, Y, grp, sz, noise, row_ids = _comparison_data(data, step, model_size, groups, sizes)
    s = _aggregate_weights(aggregate, list(Y.columns))
    Yv = Y.to_numpy(dtype=float)
    rows, pred_rows = [], []
    for size_value, idx in _size_blocks(sz, cv, len(X)):
        splits = _splits(cv, grp[idx], None if sz is None else sz[idx], random_state)
        for name, law in laws.items():
            pred, fold_of, fit_stats = _out_of_fold(law, X, Yv, idx, splits, name, progress)
            fit_stats["n_folds"] = len(splits)
            scored = fold_of >= 0
            for tname, obs, p in _targets(list(Y.columns), Yv[idx], pred, s):
                rows.append(_score_row(name, tname, size_value, obs[scored], p[scored], fit_stats))
                pred_rows.append(pd.DataFrame({"law": name, "target": tname, "model_size": size_value,
                                               "row": row_ids[idx][scored], "obs": obs[scored],
                                               "pred": p[scored], "fold": fold_of[scored]}))
    out = pd.DataFrame(rows)
    out = out.merge(noise[["domain", "noise_mad"]].rename(columns={"domain": "target"}), on="target", how="left")
    if return_predictions:
        return out, pd.concat(pred_rows, ignore_index=True)
    return out


def _comparison_data(data, step, model_size, groups, sizes):
    """(X, Y, mixture group and model size of each row, seed-noise floor, row ids) of the data."""
    if isinstance(data, pd.DataFrame):
        X, Y, grp, sz, df = _from_table(data, step, model_size)
        noise = seed_noise_floor(df, step=step)
        row_ids = X.index.to_numpy()
    else:
        X, Y, grp, sz = _from_xy(data, groups, sizes)
        noise = pd.DataFrame(columns=["domain", "noise_mad"])
        row_ids = np.arange(len(X))
    Y.columns = [str(c) for c in Y.columns]
    return X, Y, grp, sz, noise, row_ids


def _from_xy(data, groups, sizes):
    """(X, Y frames, mixture group and model size of each row) from (X, y) data."""
    try:
        X, Y = data
    except (TypeError, ValueError):
        raise ValueError("data must be a run table DataFrame or a tuple (X, y)") from None
    X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=float).reshape(len(X), -1))
    Y = Y.to_frame() if isinstance(Y, pd.Series) else Y
    Y = Y if isinstance(Y, pd.DataFrame) else pd.DataFrame(np.asarray(Y, dtype=float).reshape(len(X), -1))
    if np.ndim(data[1]) == 1 and not isinstance(data[1], (pd.Series, pd.DataFrame)):
        Y.columns = ["y"]
    grp = np.arange(len(X)) if groups is None else np.asarray(groups)
    sz = None if sizes is None else np.asarray(sizes, dtype=float)
    if len(Y) != len(X) or len(grp) != len(X) or (sz is not None and len(sz) != len(X)):
        raise ValueError("X, y, groups and sizes must have the same number of rows")
    return X, Y, grp, sz


def _aggregate_weights(aggregate, targets: list[str]) -> np.ndarray | None:
    """The validation-domain proportions of the "overall" target, in target order (None: no such target)."""
    if aggregate is None:
        return None
    if isinstance(aggregate, Mapping):
        s = np.array([aggregate[c] for c in targets], dtype=float)
    else:
        s = np.asarray(aggregate, dtype=float)
    if len(s) != len(targets):
        raise ValueError(f"aggregate has {len(s)} weights for {len(targets)} targets")
    return s


def _size_blocks(sizes: np.ndarray | None, cv, n: int) -> list[tuple[float | None, np.ndarray]]:
    """(model size, row indices) of each block evaluated on its own."""
    # Several sizes pooled in one mixing-law fit would mix scales: evaluate each size on its own.
    if sizes is not None and not (isinstance(cv, str) and cv == "cross_scale") and len(np.unique(sizes)) > 1:
        return [(float(v), np.flatnonzero(sizes == v)) for v in np.unique(sizes)]
    return [(None, np.arange(n))]


def _out_of_fold(law, X: pd.DataFrame, Y: np.ndarray, idx: np.ndarray, splits, name: str, progress: bool):
    """Out-of-fold predictions of a clone of `law` per fold and target column on rows `idx`.

    Returns (pred (len(idx), m), fold of each row (-1: never scored), {fit_time_s, n_fit_warnings}).
    """
    pred = np.full((len(idx), Y.shape[1]), np.nan)
    fold_of = np.full(len(idx), -1)
    times, n_warn = [], 0
    for f, (tr, te) in enumerate(progress_bar(splits, desc=name, disable=not progress)):
        fold_of[te] = f
        for j in range(Y.shape[1]):
            est = clone(law)
            seconds, warned = _timed_fit(est, X.iloc[idx[tr]], Y[idx[tr], j])
            times.append(seconds)
            n_warn += warned
            pred[te, j] = np.ravel(est.predict(X.iloc[idx[te]]))
    return pred, fold_of, {"fit_time_s": float(np.mean(times)), "n_fit_warnings": n_warn}


def _timed_fit(est, X, y) -> tuple[float, int]:
    """Fit `est`; (seconds it took, number of FitWarnings it raised)."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        est.fit(X, y)
    seconds = time.perf_counter() - t0
    return seconds, sum(issubclass(w.category, FitWarning) for w in caught)


def _targets(names: list[str], obs: np.ndarray, pred: np.ndarray, s: np.ndarray | None):
    """(target name, observed, predicted) per column, plus "overall" = sum_i s_i L_i when s is given."""
    targets = [(c, obs[:, j], pred[:, j]) for j, c in enumerate(names)]
    if s is not None:
        targets.append(("overall", obs @ s, pred @ s))
    return targets


def _score_row(law: str, target: str, size_value: float | None, obs: np.ndarray, pred: np.ndarray,
               fit_stats: dict) -> dict:
    row = {"law": law, "target": target}
    if size_value is not None:
        row["model_size"] = size_value
    row.update(_metrics(obs, pred))
    row.update({"n_test": int(len(obs)), "n_folds": fit_stats["n_folds"], "fit_time_s": fit_stats["fit_time_s"],
                "n_fit_warnings": fit_stats["n_fit_warnings"]})
    return row
