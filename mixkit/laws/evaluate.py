"""Held-out comparison of laws, and the seed-noise floor every error should be read against.

Nothing is ever scored on points it was fitted on: every prediction in :func:`compare_laws` comes
from a fit that did not see that mixture (or that model size, for ``cv="cross_scale"``).
"""

from __future__ import annotations

import time
import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import clone
from tqdm.auto import tqdm

from mixkit.table import pivot_losses, validate_table, weight_columns

from .fitting import FitWarning
from .pipeline import mixture_keys

METRIC_COLUMNS = ["mae", "rel_err", "r2", "spearman"]


def seed_noise_floor(table: pd.DataFrame, step: int | str = "last", decimals: int = 6) -> pd.DataFrame:
    """Mean absolute deviation of the loss across runs of the same mixture (different seeds).

    Runs are grouped by (model size, mixture, validation domain) at `step` ("last" = each run's
    final step); for each group of 2+ runs the absolute deviations from the group mean are
    averaged, then averaged over groups per domain. Returns columns domain, noise_mad, noise_rel
    (noise_mad / mean loss), n_groups, n_runs; empty when no mixture was run more than once.
    """
    df = validate_table(table)
    if step == "last":
        df = df[df["step"] == df.groupby("run_id")["step"].transform("max")]
    else:
        df = df[df["step"] == int(step)]
    df = df.assign(mixture=mixture_keys(df, decimals))
    rows = []
    for dom, gd in df.groupby("domain"):
        mads, n_runs, level = [], 0, []
        for _, g in gd.groupby(["model_size", "mixture"]):
            losses = g.groupby("run_id")["loss"].mean().to_numpy()
            if len(losses) < 2:
                continue
            mads.append(float(np.mean(np.abs(losses - losses.mean()))))
            level.append(float(losses.mean()))
            n_runs += len(losses)
        if mads:
            rows.append({"domain": dom, "noise_mad": float(np.mean(mads)),
                         "noise_rel": float(np.mean(mads) / np.mean(level)), "n_groups": len(mads), "n_runs": n_runs})
    return pd.DataFrame(rows, columns=["domain", "noise_mad", "noise_rel", "n_groups", "n_runs"])


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
    noise = pd.DataFrame(columns=["domain", "noise_mad"])
    if isinstance(data, pd.DataFrame):
        X, Y, grp, sz, df = _from_table(data, step, model_size)
        noise = seed_noise_floor(df, step=step)
        row_ids = X.index.to_numpy()
    else:
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
        row_ids = np.arange(len(X))
        if len(Y) != len(X) or len(grp) != len(X) or (sz is not None and len(sz) != len(X)):
            raise ValueError("X, y, groups and sizes must have the same number of rows")
    Y.columns = [str(c) for c in Y.columns]
    s = None
    if aggregate is not None:
        s = np.array([aggregate[c] for c in Y.columns], dtype=float) if isinstance(aggregate, Mapping) else np.asarray(aggregate, dtype=float)
        if len(s) != Y.shape[1]:
            raise ValueError(f"aggregate has {len(s)} weights for {Y.shape[1]} targets")

    # Several sizes pooled in one mixing-law fit would mix scales: evaluate each size on its own.
    if sz is not None and not (isinstance(cv, str) and cv == "cross_scale") and len(np.unique(sz)) > 1:
        blocks = [(float(v), np.flatnonzero(sz == v)) for v in np.unique(sz)]
    else:
        blocks = [(None, np.arange(len(X)))]

    Xv, Yv = X.to_numpy(dtype=float), Y.to_numpy(dtype=float)
    rows, pred_rows = [], []
    for size_value, idx in blocks:
        splits = _splits(cv, grp[idx], None if sz is None else sz[idx], random_state)
        for name, law in laws.items():
            pred = np.full((len(idx), Yv.shape[1]), np.nan)
            fold_of = np.full(len(idx), -1)
            times, n_warn = [], 0
            for f, (tr, te) in enumerate(tqdm(splits, desc=name, disable=not progress)):
                fold_of[te] = f
                for j in range(Yv.shape[1]):
                    est = clone(law)
                    Xtr = X.iloc[idx[tr]]
                    t0 = time.perf_counter()
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", FitWarning)
                        est.fit(Xtr, Yv[idx[tr], j])
                    times.append(time.perf_counter() - t0)
                    n_warn += sum(issubclass(w.category, FitWarning) for w in caught)
                    pred[te, j] = np.ravel(est.predict(X.iloc[idx[te]]))
            scored = fold_of >= 0
            targets = [(c, Yv[idx, j], pred[:, j]) for j, c in enumerate(Y.columns)]
            if s is not None:
                targets.append(("overall", Yv[idx] @ s, pred @ s))
            for tname, obs, p in targets:
                m = _metrics(obs[scored], p[scored])
                row = {"law": name, "target": tname}
                if size_value is not None:
                    row["model_size"] = size_value
                row.update(m)
                row.update({"n_test": int(scored.sum()), "n_folds": len(splits),
                            "fit_time_s": float(np.mean(times)), "n_fit_warnings": n_warn})
                rows.append(row)
                if return_predictions:
                    pred_rows.append(pd.DataFrame({"law": name, "target": tname, "model_size": size_value,
                                                   "row": row_ids[idx][scored], "obs": obs[scored],
                                                   "pred": p[scored], "fold": fold_of[scored]}))
    out = pd.DataFrame(rows)
    out = out.merge(noise[["domain", "noise_mad"]].rename(columns={"domain": "target"}), on="target", how="left")
    if return_predictions:
        return out, pd.concat(pred_rows, ignore_index=True)
    return out
