"""The step and size stages of the nested pipeline, as arrays of curves.

A stage turns a long table of points (one curve per key: a run and validation domain for the step
stage, a mixture and validation domain for the size stage) into one fitted power law per curve and
its prediction at the target. Curves of the default StepLaw / SizeLaw are fitted all at once
(:func:`mixkit.laws.batch.fit_power_curves`); any other one-input law is fitted curve by curve
through its own ``fit``. The residual bootstrap of :func:`resample_curves` redraws each curve's
points from its own fit, so the nested pipeline can propagate each stage's uncertainty.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from mixkit.progress import progress_bar

from .batch import PowerFits, fit_power_curves
from .fitting import FitWarning
from .scaling import _PowerLaw

# LM iterations per curve when the law leaves max_iter to the default budget.
_BATCH_ITER = 2000


@dataclass(frozen=True)
class Curves:
    """Curves as rows of arrays: keys (m rows of id columns), x and y (m, n) with NaN = no point."""

    keys: pd.DataFrame
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def from_long(cls, df: pd.DataFrame, ids: list[str], x: str, y: str) -> "Curves":
        wide = df.pivot_table(index=ids, columns=x, values=y, aggfunc="mean")
        xs = wide.columns.to_numpy(dtype=float)
        Y = wide.to_numpy(dtype=float)
        X = np.where(np.isfinite(Y), xs[None, :], np.nan)
        return cls(wide.index.to_frame(index=False), X, Y)

    def n_points(self) -> np.ndarray:
        return np.isfinite(self.y).sum(axis=1)


def is_batchable(law) -> bool:
    """Whether `law` is a plain power law L = E + A / x^a that the batch fitter solves exactly."""
    return isinstance(law, _PowerLaw)


def fit_curves(curves: Curves, law, target: float, what: str, progress: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Fit `law` to every curve; (one row per curve: keys, parameters, pred, diagnostics; fitted values (m, n))."""
    if is_batchable(law):
        fits = batch_fit(curves, law)
        fitted = np.where(np.isfinite(curves.y), fits.predict(np.nan_to_num(curves.x, nan=1.0)), np.nan)
        return _batch_table(curves, fits, law, target), fitted
    rows, fitted = [], np.full(curves.y.shape, np.nan)
    for i in progress_bar(range(len(curves.keys)), desc=f"{what} laws", disable=not progress):
        ok = np.isfinite(curves.y[i])
        summary, fitted[i, ok] = _fit_one_curve(law, curves.x[i, ok], curves.y[i, ok], target)
        rows.append(summary)
    table = pd.concat([curves.keys, pd.DataFrame(rows)], axis=1)
    return table.assign(n_points=curves.n_points()), fitted


def batch_fit(curves: Curves, law, start: np.ndarray | None = None, max_iter: int | None = None) -> PowerFits:
    """The power laws of every curve at once (from `start` (m, 3) when given, e.g. for a bootstrap)."""
    names = law._names
    bounds = (law.bounds or {}).get(names[2], (0.0, 10.0))
    return fit_power_curves(curves.x, curves.y, huber_delta=law.huber_delta, exponent_bounds=tuple(bounds),
                            max_iter=max_iter or law.max_iter or _BATCH_ITER, start=start)


def fitted_params(fits: pd.DataFrame, law) -> np.ndarray:
    """The (E, A, a) columns of a stage's fits table, (m, 3), as a start for batch_fit."""
    return fits[list(law._names)].to_numpy(dtype=float)


def _batch_table(curves: Curves, fits: PowerFits, law, target: float) -> pd.DataFrame:
    E, A, a = law._names
    lo, hi = (law.bounds or {}).get(a, (0.0, 10.0))
    on_bound = np.isclose(fits.a, lo, atol=1e-9) | np.isclose(fits.a, hi, atol=1e-9)
    warning = ["; ".join(m for m in ("stopped on its iteration cap" if cap else "",
                                      f"exponent {a} on a bound" if bound else "") if m)
               for cap, bound in zip(fits.hit_cap, on_bound)]
    table = curves.keys.copy()
    table[E], table[A], table[a] = fits.E, fits.A, fits.a
    table["pred"] = fits.predict(float(target))
    table["objective"] = fits.objective
    table["success"] = fits.converged
    table["hit_iter_cap"] = fits.hit_cap
    table["warning"] = warning
    table["n_points"] = curves.n_points()
    return table


def _fit_one_curve(template, x: np.ndarray, y: np.ndarray, target: float):
    """Fit a clone of a one-input law on (x, y): (summary fields, fitted values at x)."""
    est = clone(template)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        est.fit(x, y)
    msgs = [str(w.message) for w in caught if issubclass(w.category, FitWarning)]
    for w in caught:
        if not issubclass(w.category, FitWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    pred = float(np.ravel(est.predict(np.array([float(target)])))[0])
    res = est.result_
    summary = {**est.params_.iloc[0].to_dict(), "pred": pred, "objective": res.objective,
               "success": res.converged, "hit_iter_cap": res.hit_iter_cap, "warning": "; ".join(msgs)}
    return summary, np.ravel(est.predict(x))


def resample_curves(curves: Curves, fitted: np.ndarray, rng: np.random.Generator, base: np.ndarray | None = None) -> Curves:
    """A residual-bootstrap replicate: each curve's `base` values (default: its fitted values)
    times its own log residuals from `fitted`, redrawn with replacement among that curve's points."""
    mask = np.isfinite(curves.y)
    with np.errstate(invalid="ignore", divide="ignore"):
        resid = np.where(mask, np.log(curves.y / fitted), 0.0)
    # Each row's valid positions first, so a draw below the row's count picks one of its points.
    order = np.argsort(~mask, axis=1, kind="stable")
    counts = mask.sum(axis=1)
    picks = np.floor(rng.random(mask.shape) * counts[:, None]).astype(int)
    src = np.take_along_axis(order, picks, axis=1)
    drawn = np.take_along_axis(resid, src, axis=1)
    y = np.where(mask, (fitted if base is None else base) * np.exp(drawn), np.nan)
    return Curves(curves.keys, curves.x, y)
