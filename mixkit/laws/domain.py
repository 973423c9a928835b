"""Where a law was fitted, and how far a query lies outside it.

A law's prediction is an interpolation inside the region its fitting points cover and an
extrapolation outside it; the second can be far off with no sign in the number itself. Two checks,
both with a distance so the size of the extrapolation is visible:

- range: each input column's fitted [min, max]; the distance is in the column's units (mixture
  shares) or, for scale columns (model size N, tokens D, steps), in decades (log10 of the ratio to
  the nearest end of the range);
- hull: for mixture inputs, the Euclidean distance from the query mixture to the convex hull of the
  fitted mixtures (a query inside every per-domain range can still be outside the hull).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import nnls

# A query this close to the fitted region counts as inside (float noise of stored mixtures).
INSIDE_TOL = 1e-6
# Weight of the sum-to-one row in the hull projection: large, so the coefficients sum to 1.
_SUM_WEIGHT = 1e3


class ExtrapolationWarning(UserWarning):
    """A prediction was asked outside the region the law was fitted on."""


def hull_distance(points, vertices) -> np.ndarray:
    """Euclidean distance from each row of `points` (q, d) to the convex hull of `vertices` (v, d).

    Solved as a non-negative least-squares projection onto convex combinations of the vertices
    (with a heavily weighted row asking the coefficients to sum to 1); 0 inside the hull.
    """
    P = np.atleast_2d(np.asarray(points, dtype=float))
    V = np.atleast_2d(np.asarray(vertices, dtype=float))
    if P.shape[1] != V.shape[1]:
        raise ValueError(f"points have {P.shape[1]} columns but the hull's vertices {V.shape[1]}")
    A = np.vstack([V.T, np.full((1, len(V)), _SUM_WEIGHT)])
    out = np.empty(len(P))
    for i, p in enumerate(P):
        lam, _ = nnls(A, np.concatenate([p, [_SUM_WEIGHT]]))
        lam = lam / lam.sum() if lam.sum() > 0 else lam
        out[i] = float(np.linalg.norm(V.T @ lam - p))
    return out


@dataclass(frozen=True)
class FittedDomain:
    """The fitted inputs' per-column range and, for mixtures, their points (the hull's vertices)."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    log_columns: tuple[bool, ...]  # scale columns: distances in decades
    vertices: np.ndarray | None = None  # fitted mixtures (only for mixture columns)
    hull_columns: tuple[int, ...] = ()  # which columns form the mixture

    @classmethod
    def from_X(cls, X: np.ndarray, names: Sequence[str] | None = None, log_columns: Sequence[bool] | None = None,
               hull_columns: Sequence[int] = ()) -> "FittedDomain":
        X = np.atleast_2d(np.asarray(X, dtype=float))
        d = X.shape[1]
        names = tuple(str(n) for n in names) if names is not None else tuple(f"x{j}" for j in range(d))
        logs = tuple(bool(b) for b in log_columns) if log_columns is not None else (False,) * d
        hull = tuple(int(j) for j in hull_columns)
        vertices = np.unique(X[:, list(hull)], axis=0) if len(hull) > 1 else None
        return cls(names, X.min(axis=0), X.max(axis=0), logs, vertices, hull)

    def range_distances(self, X: np.ndarray) -> np.ndarray:
        """(q, d) distance of each query column beyond the fitted range (0 inside)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        logs = np.array(self.log_columns)
        with np.errstate(divide="ignore", invalid="ignore"):
            lin = np.maximum(np.maximum(self.low - X, X - self.high), 0.0)
            dec = np.maximum(np.maximum(np.log10(self.low / X), np.log10(X / self.high)), 0.0)
        return np.where(logs[None, :], np.nan_to_num(dec, nan=np.inf), lin)

    def check(self, X) -> pd.DataFrame:
        """One row per query: outside_range, range_distance (worst column), range_column, and for
        mixtures outside_hull and hull_distance."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        dist = self.range_distances(X)
        worst = np.argmax(dist, axis=1)
        rng = dist[np.arange(len(X)), worst]
        out = pd.DataFrame({"outside_range": rng > INSIDE_TOL, "range_distance": rng,
                            "range_column": [self.names[j] if r > INSIDE_TOL else "" for j, r in zip(worst, rng)]})
        if self.vertices is not None:
            hd = hull_distance(X[:, list(self.hull_columns)], self.vertices)
            out["outside_hull"] = hd > INSIDE_TOL
            out["hull_distance"] = hd
        return out

    def describe(self, flags: pd.DataFrame, what: str = "query") -> str:
        """A sentence naming the queries outside the fitted region and the largest distances ('' if none)."""
        parts = []
        outside = flags["outside_range"].to_numpy()
        if outside.any():
            i = int(np.argmax(flags["range_distance"].to_numpy()))
            col = flags["range_column"].iloc[i]
            unit = "decades" if self.log_columns[self.names.index(col)] else "(input units)"
            lo, hi = self.low[self.names.index(col)], self.high[self.names.index(col)]
            parts.append(f"{int(outside.sum())} {what}(s) outside the fitted per-column range, furthest row {i}: "
                         f"{col} beyond [{lo:.4g}, {hi:.4g}] by {flags['range_distance'].iloc[i]:.3g} {unit}")
        if "outside_hull" in flags and flags["outside_hull"].any():
            i = int(np.argmax(flags["hull_distance"].to_numpy()))
            parts.append(f"{int(flags['outside_hull'].sum())} {what}(s) outside the convex hull of the fitted "
                         f"mixtures, furthest row {i} at distance {flags['hull_distance'].iloc[i]:.3g}")
        return "; ".join(parts)


def warn_outside(domain: FittedDomain, flags: pd.DataFrame, law: str, what: str = "query", stacklevel: int = 3) -> None:
    """An ExtrapolationWarning with the distances when any query is outside the fitted region."""
    text = domain.describe(flags, what)
    if text:
        warnings.warn(f"{law}: extrapolating: {text}", ExtrapolationWarning, stacklevel=stacklevel)
