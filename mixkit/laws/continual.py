"""Continual pre-training: how much original data keeps the original-domain loss from rising.

- ContinualMixingLaw: Ye et al. (2024)'s two-domain mixing law for continual pre-training,
  ``L(r) = c + exp(k r + b)``, r the share of original (pre-training) data in the new mixture.
- critical_proportion: the smallest r whose predicted loss stays at (or within a tolerance of) the
  pre-continual loss; a validation run at that r checks it.
- DCPTLaw: the D-CPT law of Que et al. (2024),
  ``L(N, D, r) = E + A/N^a + B r^h / D^b + C / (r + eps)^g``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import optimize as sopt

from .base import ParametricLaw
from .fitting import Param

__all__ = ["ContinualMixingLaw", "DCPTLaw", "critical_proportion"]


class ContinualMixingLaw(ParametricLaw):
    """``L(r) = c + exp(k r + b)``: original-domain loss against the share r of original data.

    X: r, (n,) or (n, 1) in [0, 1]; y: losses (n,) (or (n, m), fitted per column).
    Parameters: c (log space, positive), k, b (free).
    """

    _n_inputs = 1
    _input_rule = "the share r of original data must lie in [0, 1]"

    def _check_inputs(self, X):
        arr = super()._check_inputs(X)
        if np.any(arr < -1e-9) or np.any(arr > 1 + 1e-9):
            raise ValueError(self._input_rule)
        return arr

    def _param_specs(self, X, y):
        ymin = float(np.min(y))
        return [
            Param("c", tuple(ymin * f for f in (0.5, 0.9, 0.98)), log=True),
            Param("k", (-10.0, -3.0, -1.0, 0.0)),
            Param("b", (-4.0, -1.0, 0.5)),
        ]

    def _starts(self, X, y):
        out = []
        for f in (0.5, 0.8, 0.9, 0.95, 0.98, 0.99):
            c = f * float(np.min(y))
            k, b = np.polyfit(X[:, 0], np.log(y - c), 1)
            out.append(np.array([c, k, b]))
        return out

    def _log_predict(self, theta, X):
        c, k, b = theta
        return np.log(c + np.exp(k * X[:, 0] + b))

    def _log_jac(self, theta, X):
        c, k, b = theta
        e = np.exp(k * X[:, 0] + b)
        pred = c + e
        return np.column_stack([1.0 / pred, e * X[:, 0] / pred, e / pred])


class DCPTLaw(ParametricLaw):
    """D-CPT law (Que et al. 2024): ``L(N, D, r) = E + A/N^a + B r^h / D^b + C / (r + eps)^g``.

    X: (n, 3) columns N (model size), D (tokens), r (domain-corpus ratio in [0, 1]); y (n,).
    Parameters: E, A, B, C (log space), a, b, h, g (in [0, 10]); `eps` is a fixed hyperparameter
    keeping the last term finite at r = 0.
    """

    _n_inputs = 3
    _input_rule = "model sizes N and tokens D must be positive and the ratio r must lie in [0, 1]"

    def __init__(self, eps: float = 0.01, n_starts: int = 24, huber_delta: float = 1e-3, bootstrap: int = 0,
                 random_state=None, bounds=None, max_iter: int = 3000):
        self.eps = eps
        super().__init__(n_starts=n_starts, huber_delta=huber_delta, bootstrap=bootstrap,
                         random_state=random_state, bounds=bounds, max_iter=max_iter)

    def _check_inputs(self, X):
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        arr = super()._check_inputs(X)
        if np.any(arr[:, :2] <= 0):
            raise ValueError("model sizes N and tokens D must be positive")
        if np.any(arr[:, 2] < 0) or np.any(arr[:, 2] > 1 + 1e-9):
            raise ValueError("the ratio r must lie in [0, 1]")
        return arr

    def _param_specs(self, X, y):
        ymin = float(np.min(y))
        coef = tuple(float(np.exp(v)) for v in (0.0, 4.0, 8.0))
        expo = (0.2, 0.5, 1.0)
        return [
            Param("E", tuple(ymin * f for f in (0.3, 0.7)), log=True),
            Param("A", coef, log=True),
            Param("B", coef, log=True),
            Param("C", tuple(ymin * f for f in (0.01, 0.1)), log=True),
            Param("a", expo, bounds=(0.0, 10.0)),
            Param("b", expo, bounds=(0.0, 10.0)),
            Param("h", expo, bounds=(0.0, 10.0)),
            Param("g", (0.1, 0.5), bounds=(0.0, 10.0)),
        ]

    def _terms(self, theta, X):
        E, A, B, C, a, b, h, g = theta
        N, D, r = X[:, 0], X[:, 1], X[:, 2]
        rh = np.where(r > 0, np.power(np.where(r > 0, r, 1.0), h), 0.0)
        return E, A * N ** (-a), B * rh * D ** (-b), C * (r + self.eps) ** (-g)

    def _log_predict(self, theta, X):
        E, tN, tD, tR = self._terms(theta, X)
        return np.log(E + tN + tD + tR)

    def _log_jac(self, theta, X):
        E, A, B, C, a, b, h, g = theta
        N, D, r = X[:, 0], X[:, 1], X[:, 2]
        _, tN, tD, tR = self._terms(theta, X)
        pred = E + tN + tD + tR
        logr = np.log(np.where(r > 0, r, 1.0))
        cols = [
            np.ones_like(pred), tN / A, tD / B, tR / C,
            -tN * np.log(N), -tD * np.log(D), tD * logr, -tR * np.log(r + self.eps),
        ]
        return np.column_stack(cols) / pred[:, None]


def _scalar_law(predictor) -> Callable[[float], float]:
    """The predictor as f(r) -> loss: a fitted law is asked with X of shape (1, 1) first, then (1,)
    for estimators that only take a 1-D input."""
    if hasattr(predictor, "predict"):
        def f(r: float) -> float:
            try:
                out = predictor.predict(np.array([[r]], dtype=float))
            except ValueError:
                out = predictor.predict(np.array([r], dtype=float))
            return float(np.asarray(out, dtype=float).ravel()[0])
        return f
    if callable(predictor):
        return lambda r: float(np.asarray(predictor(r), dtype=float).ravel()[0])
    raise ValueError("predictor must have a .predict method or be a callable f(r) -> loss")


def critical_proportion(
    predictor,
    reference_loss: float,
    tolerance: float = 0.0,
    lo: float = 0.0,
    hi: float = 1.0,
    grid: int = 201,
    xtol: float = 1e-10,
) -> float:
    """Smallest replay share r in [lo, hi] whose predicted original-domain loss is at most
    ``reference_loss + tolerance`` (Ye et al. 2024, continual pretraining).

    ``predictor`` maps the share of original data r to the original-domain loss: a fitted law
    (``predict([[r]])``) or a callable ``f(r)``. A grid of ``grid`` points finds the first share
    that qualifies and a root solve (brentq) refines it between that point and the one before,
    so laws that are monotone (the usual case) and laws that are not both get the smallest share.
    Raises ValueError when no share in [lo, hi] qualifies.
    """
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite lo < hi, got lo={lo}, hi={hi}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    f = _scalar_law(predictor)
    target = float(reference_loss) + float(tolerance)
    rs = np.linspace(lo, hi, max(int(grid), 2))
    vals = np.array([f(r) for r in rs])
    if not np.all(np.isfinite(vals)):
        raise ValueError("the law gives non-finite losses on [lo, hi]")
    ok = np.flatnonzero(vals <= target)
    if len(ok) == 0:
        raise ValueError(
            f"no replay share in [{lo}, {hi}] keeps the predicted loss within {target:.6g} "
            f"(reference {reference_loss:.6g} + tolerance {tolerance:.6g}); the lowest prediction "
            f"is {vals.min():.6g} at r={rs[int(np.argmin(vals))]:.4g}"
        )
    i = int(ok[0])
    if i == 0:
        return float(rs[0])
    return float(sopt.brentq(lambda r: f(r) - target, rs[i - 1], rs[i], xtol=xtol))
