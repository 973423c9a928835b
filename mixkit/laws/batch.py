"""Many one-input power laws ``L(x) = E + A / x^a`` fitted at once, for the nested pipeline.

The nested pipeline fits one step law per (run, validation domain) and one size law per (mixture,
validation domain): thousands of three-parameter problems that differ only in their data. Fitted
one by one through the multi-start L-BFGS-B of :mod:`mixkit.laws.fitting`, they cost about 0.1 s
each; here they are solved together as arrays, with no random starts, so the answer cannot depend
on a seed:

1. profile over the exponent: for each ``a`` of a fixed grid the law is linear in (E, A), solved
   in closed form for every curve; the (E, A, a) with the lowest objective starts step 2 (a global
   search in the only non-linear parameter);
2. Levenberg-Marquardt on the same objective as :func:`~mixkit.laws.fitting.robust_fit` (sum of
   Huber losses of log-loss residuals, E and A in log space, ``a`` in its bounds), with iteratively
   reweighted normal equations, every curve stepping at once; a step is kept only where it lowers
   that curve's objective.

A curve's points are one row of (m, n) arrays; NaN marks a missing point (curves may have different
numbers of points). Each curve's fit reports whether it converged or stopped on the iteration cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lm import huber, levenberg_marquardt

# Exponent grid of the profile: fine where losses' exponents live, coarse up to the bound.
_PROFILE = np.unique(np.concatenate([np.linspace(0.0, 1.0, 51), np.linspace(1.0, 3.0, 41), [4.0, 5.0, 6.5, 8.0, 10.0]]))
# Floors of E and A as fractions of a curve's smallest loss: both are fitted in log space.
_E_FLOOR, _A_FLOOR = 1e-6, 1e-12


@dataclass(frozen=True)
class PowerFits:
    """E, A, a (m,) of m curves, their objectives, and how each fit ended."""

    E: np.ndarray
    A: np.ndarray
    a: np.ndarray
    objective: np.ndarray  # sum Huber of log residuals (robust_fit's objective)
    converged: np.ndarray  # bool: no step lowers the objective any more
    hit_cap: np.ndarray  # bool: stopped on max_iter before converging
    n_iter: int

    def predict(self, x) -> np.ndarray:
        """Predictions at x: (m,) for one value per curve (or a scalar), (m, k) for k values per curve."""
        x = np.asarray(x, dtype=float)
        if x.ndim == 0:
            x = np.full(len(self.E), float(x))
        if x.ndim == 1:
            return self.E + self.A * x ** (-self.a)
        return self.E[:, None] + self.A[:, None] * x ** (-self.a[:, None])

    def params(self) -> np.ndarray:
        return np.column_stack([self.E, self.A, self.a])


def fit_power_curves(x, y, huber_delta: float = 1e-3, exponent_bounds: tuple[float, float] = (0.0, 10.0),
                     max_iter: int = 300, start: np.ndarray | None = None) -> PowerFits:
    """Fit ``y = E + A x^-a`` to every row of (m, n) arrays x, y (NaN = no point) at once.

    Every row needs at least 3 points with x > 0 and y > 0. `exponent_bounds` bounds ``a``.
    `start` (m, 3) natural-scale (E, A, a) skips the profile search (a bootstrap replicate starts
    from the original fit).
    """
    x, y, mask = _check_curves(x, y)
    lo, hi = exponent_bounds
    logx = np.where(mask, np.log(np.where(mask, x, 1.0)), 0.0)
    logy = np.where(mask, np.log(np.where(mask, y, 1.0)), 0.0)
    if start is None:
        z = _profile_start(logx, y, logy, mask, huber_delta, lo, hi)
    else:
        z = _start_point(np.asarray(start, dtype=float), y, mask)
    return _levenberg_marquardt(z, logx, logy, mask, huber_delta, lo, hi, max_iter)


def _start_point(start: np.ndarray, y, mask) -> np.ndarray:
    """(log E, log A, a) from a natural-scale start, E and A held to the profile's floors: a fit whose
    A underflowed to 0 (a flat curve) would otherwise start at log 0 = -inf, and the steps from there
    are not finite."""
    ymin = np.min(np.where(mask, y, np.inf), axis=1)
    E = np.clip(start[:, 0], _E_FLOOR * ymin, None)
    A = np.maximum(start[:, 1], _A_FLOOR * ymin)
    return np.column_stack([np.log(E), np.log(A), start[:, 2]])


def _check_curves(x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.atleast_2d(np.asarray(y, dtype=float))
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    mask = np.isfinite(x) & np.isfinite(y)
    if np.any(mask & ((x <= 0) | (y <= 0))):
        raise ValueError("power-law curves need positive inputs x and losses y")
    few = np.flatnonzero(mask.sum(axis=1) < 3)
    if few.size:
        raise ValueError(f"curve {few[0]} has {int(mask[few[0]].sum())} point(s); a power law needs at least 3 "
                         f"({few.size} such curve(s))")
    return x, y, mask


def _objective(z: np.ndarray, logx, logy, mask, delta) -> tuple[np.ndarray, np.ndarray]:
    """(per-curve objective (m,), log residuals (m, n)) at z = (log E, log A, a) per curve."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        lp = np.logaddexp(z[:, [0]], z[:, [1]] - z[:, [2]] * logx)
    r = np.where(mask, lp - logy, 0.0)
    f = np.sum(np.where(mask, huber(r, delta), 0.0), axis=1)
    return np.where(np.isfinite(f), f, np.inf), r


def _profile_start(logx, y, logy, mask, delta, lo, hi) -> np.ndarray:
    """Best (log E, log A, a) per curve over the exponent grid, (E, A) by weighted least squares."""
    m = len(y)
    best_f, best_z = np.full(m, np.inf), np.zeros((m, 3))
    # Weights 1/y^2 make the natural-scale residuals approximate the log residuals.
    w = np.where(mask, 1.0 / np.where(mask, y, 1.0) ** 2, 0.0)
    ymin = np.min(np.where(mask, y, np.inf), axis=1)
    for a in _PROFILE[(_PROFILE >= lo) & (_PROFILE <= hi)]:
        u = np.where(mask, np.exp(-a * logx), 0.0)
        E, A = _weighted_line(u, np.where(mask, y, 0.0), w)
        # Keep the floor positive and below the smallest loss; a negative slope is a flat curve.
        E = np.clip(E, _E_FLOOR * ymin, ymin * (1 - 1e-6))
        A = np.maximum(A, _A_FLOOR * ymin)
        z = np.column_stack([np.log(E), np.log(A), np.full(m, a)])
        f, _ = _objective(z, logx, logy, mask, delta)
        better = f < best_f
        best_f[better], best_z[better] = f[better], z[better]
    return best_z


def _weighted_line(u: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row weighted least squares y = E + A u: (E, A)."""
    sw, su, sy = w.sum(1), (w * u).sum(1), (w * y).sum(1)
    suu, suy = (w * u * u).sum(1), (w * u * y).sum(1)
    det = sw * suu - su * su
    ok = np.abs(det) > 1e-300
    A = np.where(ok, (sw * suy - su * sy) / np.where(ok, det, 1.0), 0.0)
    E = (sy - A * su) / sw
    return E, A


def _jacobian(z: np.ndarray, logx, mask) -> np.ndarray:
    """(m, n, 3) derivatives of the log prediction with respect to (log E, log A, a)."""
    with np.errstate(over="ignore", invalid="ignore"):
        t = z[:, [1]] - z[:, [2]] * logx  # log of the A x^-a term
        share = 1.0 / (1.0 + np.exp(z[:, [0]] - t))  # that term's share of the prediction
    J = np.stack([1.0 - share, share, -share * logx], axis=-1)
    return np.where(mask[..., None], J, 0.0)


def _levenberg_marquardt(z, logx, logy, mask, delta, lo, hi, max_iter) -> PowerFits:
    """The power-law curves through :func:`levenberg_marquardt` (exponent bounded, E and A free in log)."""
    def fun(zs, rows):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.logaddexp(zs[:, [0]], zs[:, [1]] - zs[:, [2]] * logx[rows])

    def jac(zs, rows):
        return _jacobian(zs, logx[rows], mask[rows])

    lower = np.array([-np.inf, -np.inf, lo])
    upper = np.array([np.inf, np.inf, hi])
    z, f, done, it = levenberg_marquardt(fun, jac, z, logy, mask, delta, lower, upper, max_iter)
    return PowerFits(E=np.exp(z[:, 0]), A=np.exp(z[:, 1]), a=z[:, 2].copy(), objective=f, converged=done,
                     hit_cap=~done, n_iter=it)
