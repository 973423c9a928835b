"""Scaling laws in training steps, model size, and both (Chinchilla).

- StepLaw:      L(S) = E + B / S^b       (one run's loss curve; Ye et al.'s step law)
- SizeLaw:      L(N) = E + A / N^a       (one mixture across proxy sizes)
- ChinchillaLaw L(N, D) = E + A / N^a + B / D^b   (Hoffmann et al. 2022, fitted like Epoch AI's
  replication: log A, log B, log E through a LogSumExp, Huber on log loss, L-BFGS from a grid)
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from .base import ParametricLaw
from .fitting import Param

_EXPONENT_GRID = (0.1, 0.3, 0.6, 1.0)
_COEF_GRID = tuple(float(np.exp(v)) for v in np.arange(-2.0, 17.0, 2.0))


def _positive_inputs_rule(what: str) -> str:
    return f"{what} must be finite and positive (power laws take their logarithm)"


def _check_positive_inputs(X: np.ndarray, what: str) -> None:
    if np.any(X <= 0) or not np.all(np.isfinite(X)):
        raise ValueError(_positive_inputs_rule(what))


class _PowerLaw(ParametricLaw):
    """L(x) = E + A / x^a with E, A > 0 (log space) and a >= 0."""

    _n_inputs = 1
    _names = ("E", "A", "a")
    _input = "x"
    _log_inputs = True

    def _probe_X(self, X):
        # Power laws are used to extrapolate: equally good fits must agree a decade beyond the data.
        return np.vstack([X, [[10.0 * float(np.max(X))]]])

    @property
    def _input_rule(self) -> str:
        return _positive_inputs_rule(self._input)

    def _check_inputs(self, X) -> np.ndarray:
        arr = super()._check_inputs(X)
        _check_positive_inputs(arr, self._input)
        return arr

    def _param_specs(self, X, y):
        E, A, a = self._names
        ymin = float(np.min(y))
        return [
            Param(E, tuple(ymin * f for f in (0.3, 0.6, 0.85, 0.97)), log=True),
            Param(A, _COEF_GRID, log=True),
            Param(a, _EXPONENT_GRID, bounds=(0.0, 10.0)),
        ]

    def _starts(self, X, y):
        # For a fixed E the law is linear in log space: log(y - E) = log A - a log x.
        x = X[:, 0]
        out = []
        for f in (0.5, 0.8, 0.95):
            E = f * float(np.min(y))
            slope, icpt = np.polyfit(np.log(x), np.log(y - E), 1)
            if -slope > 0:
                out.append(np.array([E, np.exp(icpt), -slope]))
        return out

    def _log_predict(self, theta, X):
        E, A, a = theta
        return np.log(E + A * X[:, 0] ** (-a))

    def _log_jac(self, theta, X):
        E, A, a = theta
        x = X[:, 0]
        xa = x ** (-a)
        pred = E + A * xa
        return np.column_stack([1.0 / pred, xa / pred, -A * xa * np.log(x) / pred])


class StepLaw(_PowerLaw):
    """Loss against training steps S of one run: ``L(S) = E + B / S^b``.

    X: steps, (n,) or (n, 1); y: losses (n,) or (n, m) for several validation domains at once
    (each fitted separately). Parameters: E, B (log space), b (bounded to [0, 10]).
    """

    _names = ("E", "B", "b")
    _input = "steps"


class SizeLaw(_PowerLaw):
    """Loss against model size N (non-embedding parameters): ``L(N) = E + A / N^a``.

    X: sizes, (n,) or (n, 1); y: (n,) or (n, m). Parameters: E, A (log space), a (in [0, 10]).
    """

    _names = ("E", "A", "a")
    _input = "model sizes"


class ChinchillaLaw(ParametricLaw):
    """``L(N, D) = E + A / N^a + B / D^b`` over model size N and training tokens D.

    X: (n, 2) columns N, D. Fitted as in Epoch AI's replication of Hoffmann et al.: the model is
    ``log L = LSE(log A - a log N, log B - b log D, log E)``; log A, log B, log E come from the log
    transform of the positive parameters; starts from the grid a, b in {0, .5, ..., 2}, log E in
    {-1, -.5, ..., 1}, log A, log B in {0, 5, ..., 25} (best grid points plus random starts).
    """

    _n_inputs = 2
    _input_rule = _positive_inputs_rule("model sizes N and tokens D")
    _log_inputs = True

    def _probe_X(self, X):
        return np.vstack([X, 10.0 * X.max(axis=0, keepdims=True)])

    def _check_inputs(self, X):
        arr = super()._check_inputs(X)
        _check_positive_inputs(arr, "model sizes N and tokens D")
        return arr

    def _param_specs(self, X, y):
        logs = tuple(float(np.exp(v)) for v in np.arange(0.0, 26.0, 5.0))
        return [
            Param("E", tuple(float(np.exp(v)) for v in np.arange(-1.0, 1.01, 0.5)), log=True),
            Param("A", logs, log=True),
            Param("B", logs, log=True),
            Param("a", (0.0, 0.5, 1.0, 1.5, 2.0), bounds=(0.0, 10.0)),
            Param("b", (0.0, 0.5, 1.0, 1.5, 2.0), bounds=(0.0, 10.0)),
        ]

    @staticmethod
    def _terms(theta, X):
        E, A, B, a, b = theta
        logN, logD = np.log(X[:, 0]), np.log(X[:, 1])
        return np.column_stack([np.log(A) - a * logN, np.log(B) - b * logD, np.full(len(X), np.log(E))])

    def _log_predict(self, theta, X):
        return logsumexp(self._terms(theta, X), axis=1)

    def _log_jac(self, theta, X):
        E, A, B, a, b = theta
        w = softmax(self._terms(theta, X), axis=1)  # share of each term in the predicted loss
        return np.column_stack([w[:, 2] / E, w[:, 0] / A, w[:, 1] / B, -w[:, 0] * np.log(X[:, 0]), -w[:, 1] * np.log(X[:, 1])])
