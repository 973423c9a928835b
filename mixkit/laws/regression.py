"""RegMix regressors (Liu et al. 2024): predict a proxy's loss from its mixture weights.

RegMix trains many tiny proxies on random mixtures and regresses the target loss on the weights.
Three regressors on the scikit-learn contract (fit(X (n, d) weights, y (n,) or (n, m) losses)
returns self; fitted state ends in ``_``; ``predict`` before ``fit`` raises NotFittedError;
``score`` is R^2):

* :class:`LinearRegressionLaw`: ordinary least squares on the weights (RegMix's linear baseline).
* :class:`LightGBMLaw`: gradient-boosted trees with RegMix's settings (gbdt, L2 objective,
  1000 iterations, learning rate 0.01, 31 leaves, seed 42) and *no* early stopping: RegMix's
  notebook stops early on its held-out mixtures, which leaks them into the fit.
  ``min_child_samples`` defaults to ``min(20, max(2, n // 8))`` so that trees still split when
  only a few dozen runs exist (LightGBM's default of 20 cannot split below about 40 runs).
* :class:`LogLinearLaw`: ``L(r) = exp(c) + exp(t . r)``, the mixing-law form without a separate
  scale (with weights on the simplex ``k exp(t . r)`` is ``exp(t' . r)``), fitted with the shared
  robust fitter (Huber on log-loss residuals, multi-start L-BFGS-B).

X rows are mixtures: each law refuses, at fit and at predict, rows that are not (negative or
non-finite weights, sums further than 1e-3 from 1; :func:`mixkit.laws.base.check_simplex`) unless
constructed with ``simplex=False``, for weights that are deliberately not normalised.

Multi-output y fits one model per column (LightGBM, log-linear) or one joint least-squares
solve (linear); ``output_names_`` holds the column names.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from .base import LossRegressor, ParametricLaw
from .fitting import Param

__all__ = ["LinearRegressionLaw", "LightGBMLaw", "LogLinearLaw", "default_min_child_samples"]


def default_min_child_samples(n_samples: int) -> int:
    """Smallest leaf size that still lets trees split on few runs; RegMix's 20 from 160 runs on."""
    return int(min(20, max(2, n_samples // 8)))


class LinearRegressionLaw(LossRegressor):
    """Ordinary least squares ``L = b + w . r`` on the mixture weights.

    With weights on the simplex the intercept and the weights are not identified separately
    (``sum r = 1``); the minimum-norm solution is used, which predicts the same losses.

    It needs at least as many runs as parameters (d weights, plus the intercept): with fewer,
    least squares interpolates the runs and its coefficients say nothing.

    Fitted: ``coef_`` (d,) or (m, d), ``intercept_`` float or (m,).
    """

    _fitted_attr = "coef_"
    _mixture_inputs = True

    def __init__(self, fit_intercept: bool = True, simplex: bool = True):
        self.fit_intercept = fit_intercept
        self.simplex = simplex

    def fit(self, X, y):
        Xa, ya = self._validate_fit_data(X, y)  # any finite y: no log space, no positivity
        n_params = Xa.shape[1] + int(bool(self.fit_intercept))
        if len(Xa) < n_params:
            what = f"{Xa.shape[1]} weights" + (" + intercept" if self.fit_intercept else "")
            raise ValueError(f"LinearRegressionLaw needs at least as many runs as parameters ({n_params}: {what}); "
                             f"got {len(Xa)} sample{'' if len(Xa) == 1 else 's'}")
        Y = ya[:, None] if ya.ndim == 1 else ya
        design = np.column_stack([np.ones(len(Xa)), Xa]) if self.fit_intercept else Xa
        beta, *_ = np.linalg.lstsq(design, Y, rcond=None)
        if self.fit_intercept:
            intercept, coef = beta[0], beta[1:].T
        else:
            intercept, coef = np.zeros(Y.shape[1]), beta.T
        self.coef_ = coef[0] if ya.ndim == 1 else coef
        self.intercept_ = float(intercept[0]) if ya.ndim == 1 else intercept
        return self

    def predict(self, X) -> np.ndarray:
        Xa = self._validate_predict_X(X)
        return Xa @ np.asarray(self.coef_).T + self.intercept_


class LightGBMLaw(LossRegressor):
    """LightGBM regression on the mixture weights with RegMix's settings, no early stopping.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves : RegMix: 1000, 0.01, 31 (LightGBM default leaves).
    min_child_samples : leaf size; None picks ``min(20, max(2, n // 8))`` at fit time
        (recorded in ``min_child_samples_``).
    random_state : LightGBM seed (RegMix: 42); with ``deterministic`` the same seed gives the same
        trees.
    n_jobs : threads (1 keeps results bit-for-bit stable and leaves cores to other work).
    extra_params : other LightGBM parameters, passed through.
    simplex : rows of X must be mixtures (see the module docstring); False accepts any finite X.

    Fitted: ``models_`` (one ``lightgbm.LGBMRegressor`` per output), ``min_child_samples_``.
    """

    _fitted_attr = "models_"
    _mixture_inputs = True

    def __init__(self, n_estimators: int = 1000, learning_rate: float = 0.01, num_leaves: int = 31,
                 min_child_samples: int | None = None, random_state: int = 42, n_jobs: int = 1,
                 extra_params: dict | None = None, simplex: bool = True):
        self.simplex = simplex
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.extra_params = extra_params

    def fit(self, X, y):
        import lightgbm

        Xa, ya = self._validate_fit_data(X, y)
        Y = ya[:, None] if ya.ndim == 1 else ya
        mcs = self.min_child_samples
        self.min_child_samples_ = default_min_child_samples(len(Xa)) if mcs is None else int(mcs)
        params = dict(
            boosting_type="gbdt", objective="regression", n_estimators=self.n_estimators,
            learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples_, random_state=self.random_state,
            n_jobs=self.n_jobs, deterministic=True, force_row_wise=True, verbosity=-1,
        )
        # LightGBM's bins need at least min_data_in_bin rows; keep it below the leaf size.
        params["min_data_in_bin"] = max(1, min(3, self.min_child_samples_))
        params.update(self.extra_params or {})
        self.models_ = [lightgbm.LGBMRegressor(**params).fit(Xa, Y[:, j]) for j in range(Y.shape[1])]
        return self

    def predict(self, X) -> np.ndarray:
        Xa = self._validate_predict_X(X)
        return self._shaped_like_y(np.column_stack([m.predict(Xa) for m in self.models_]))

    @property
    def feature_importances_(self) -> np.ndarray:
        check_is_fitted(self, "models_")
        imp = np.array([m.feature_importances_ for m in self.models_], dtype=float)
        return imp[0] if len(imp) == 1 else imp


class LogLinearLaw(ParametricLaw):
    """``L(r) = exp(c) + exp(t . r)`` per output, fitted robustly in log-loss space.

    ``exp(c)`` is the irreducible part, ``t_j`` the effect of domain j's weight. Parameters:
    ``c`` and one ``t_<domain>`` per column of X (``t_<j>`` without column names). The
    hyperparameters are those of :class:`~mixkit.laws.base.ParametricLaw` (n_starts, huber_delta,
    bootstrap, random_state, bounds, max_iter).

    The fit starts from the Huber optimum itself: a Levenberg-Marquardt (iteratively reweighted
    Gauss-Newton) solve with the exact Jacobian, from the best linearised start (least squares of
    ``log(y - floor)`` on r for a few floors below min(y)). L-BFGS-B alone
    creeps toward the strict tolerance for thousands of iterations on this objective (one ``t``
    per domain, Huber's linear tails): on 64 domains x 512 runs it stopped on a 500-iteration cap on
    every fold and under-fitted. From the Gauss-Newton optimum it converges in a few iterations.
    That optimum is the law's start grid, so the default single start (``n_starts=1``) is it; more
    starts add random ones around it. Each start runs under the fitter's iteration budget
    (``max_iter=None``: it grows with the parameter count); a best start that still stops on its cap
    is reported (``result_.success`` False, ``result_.hit_iter_cap`` True and a FitWarning), never
    hidden.

    `simplex`: rows of X must be mixtures (see the module docstring); False accepts any finite X.
    """

    _mixture_inputs = True

    def __init__(self, n_starts: int = 1, huber_delta: float = 1e-3, bootstrap: int = 0,
                 random_state=None, bounds=None, max_iter: int | None = None, simplex: bool = True):
        self.simplex = simplex
        super().__init__(n_starts=n_starts, huber_delta=huber_delta, bootstrap=bootstrap,
                         random_state=random_state, bounds=bounds, max_iter=max_iter)

    def _names(self, d: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None and len(names) == d:
            return [f"t_{n}" for n in names]
        return [f"t_{j}" for j in range(d)]

    def _param_specs(self, X: np.ndarray, y: np.ndarray) -> list[Param]:
        """The start grid is the single Huber optimum found by Gauss-Newton (when it exists), so
        the fitter's grid start is that optimum and converges at once; else a grid of floors c."""
        ymin = float(np.min(y))
        theta0 = self._gauss_newton_start(X, y)
        if theta0 is None:
            c_grid, t_grid = tuple(float(np.log(f * ymin)) for f in (0.2, 0.5, 0.8, 0.95)), [(0.0,)] * X.shape[1]
        else:
            c_grid, t_grid = (float(theta0[0]),), [(float(t),) for t in theta0[1:]]
        specs = [Param("c", c_grid, log=False, bounds=(None, float(np.log(ymin)) + 1.0))]
        specs += [Param(n, g, log=False, bounds=(-50.0, 50.0)) for n, g in zip(self._names(X.shape[1]), t_grid)]
        return specs

    def _log_predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.logaddexp(theta[0], X @ theta[1:])

    def _log_jac(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        z = X @ theta[1:]
        share_c = 1.0 / (1.0 + np.exp(np.clip(z - theta[0], -700, 700)))  # exp(c) / pred
        return np.column_stack([share_c, X * (1.0 - share_c)[:, None]])

    def _gauss_newton_start(self, X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """The Huber optimum found by Gauss-Newton from the best linearised solve (None when no
        linearised solve is finite): L-BFGS-B started there stops at once, where from elsewhere it
        creeps for thousands of iterations."""
        linear = _linearised_starts(X, y)
        if not linear:
            return None
        logy = np.log(y)
        first = min(linear, key=lambda th: _huber_sum(self._log_predict(th, X) - logy, self.huber_delta))
        c_max = float(np.log(np.min(y))) + 1.0
        # One BLAS thread, as in the fitter: small dense solves only lose to thread contention.
        with threadpool_limits(limits=1, user_api="blas"):
            return _huber_gauss_newton(self, first, X, logy, self.huber_delta, c_max)

def _linearised_starts(X: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Least squares of log(y - floor) on r for a few floors below min(y): (c, t) starts."""
    starts = []
    ymin = float(np.min(y))
    for frac in (0.0, 0.5, 0.9):
        floor = frac * ymin
        c = np.log(floor) if floor > 0 else np.log(1e-3 * ymin)
        t, *_ = np.linalg.lstsq(X, np.log(y - floor), rcond=None)
        if np.all(np.isfinite(t)):
            starts.append(np.concatenate([[c], np.clip(t, -49.0, 49.0)]))
    return starts


def _huber_sum(r: np.ndarray, delta: float) -> float:
    a = np.abs(r)
    return float(np.sum(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))))


def _huber_gauss_newton(law, theta: np.ndarray, X: np.ndarray, logy: np.ndarray, delta: float, c_max: float,
                        max_iter: int = 300) -> np.ndarray:
    """Levenberg-Marquardt on the sum-Huber objective of log residuals (iteratively reweighted:
    the Huber weight of a residual is min(1, delta / |r|)), within the law's parameter bounds."""
    lo = np.r_[-np.inf, np.full(len(theta) - 1, -49.9)]
    hi = np.r_[c_max, np.full(len(theta) - 1, 49.9)]
    theta = np.clip(theta, lo, hi)
    r = law._log_predict(theta, X) - logy
    value, mu = _huber_sum(r, delta), 1e-3
    for _ in range(max_iter):
        step = _lm_step(law, theta, X, r, delta, mu)
        cand = np.clip(theta + step, lo, hi)
        r_new = law._log_predict(cand, X) - logy
        v_new = _huber_sum(r_new, delta) if np.all(np.isfinite(r_new)) else np.inf
        if v_new < value:
            done = value - v_new <= 1e-15 * max(value, 1e-300)
            theta, r, value, mu = cand, r_new, v_new, max(mu / 3, 1e-12)
            if done:
                break
        else:
            mu *= 10
            if mu > 1e12:
                break
    return _polish(law, theta, X, logy, delta, lo, hi)


def _lm_step(law, theta, X, r, delta, mu) -> np.ndarray:
    J = law._log_jac(theta, X)
    omega = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
    H = (J * omega[:, None]).T @ J
    g = J.T @ np.clip(r, -delta, delta)
    return np.linalg.solve(H + mu * (np.diag(np.diag(H)) + 1e-12 * np.eye(len(theta))), -g)


def _polish(law, theta, X, logy, delta, lo, hi, steps: int = 5) -> np.ndarray:
    """Newton steps that shrink the gradient where the objective no longer changes in floating
    point: without them L-BFGS-B's line search fails at the optimum ("ABNORMAL")."""
    def grad_norm(th):
        r = law._log_predict(th, X) - logy
        return float(np.abs(law._log_jac(th, X).T @ np.clip(r, -delta, delta)).max()), r

    gn, r = grad_norm(theta)
    value = _huber_sum(r, delta)
    for _ in range(steps):
        cand = np.clip(theta + _lm_step(law, theta, X, r, delta, 1e-12), lo, hi)
        g_new, r_new = grad_norm(cand)
        if not (g_new < gn and _huber_sum(r_new, delta) <= value * (1 + 1e-12)):
            break
        theta, gn, r = cand, g_new, r_new
    return theta
    return theta
