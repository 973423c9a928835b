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

import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

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
    bootstrap, random_state, bounds, max_iter). Starts include a linearised solve (least squares
    of ``log(y - exp(c))`` on r for a few floors exp(c) below min(y)).

    Defaults differ from ParametricLaw's: 4 starts and 500 L-BFGS-B iterations per start. With
    one ``t`` per domain and Huber's linear tails, L-BFGS-B creeps toward the strict tolerance for
    thousands of iterations while the predictions no longer change (RegMix 64 runs: objective
    within 1.2% and the same held-out Spearman at 300 vs 2000 iterations, 10x faster). Hitting
    that cap is therefore expected and not warned about; ``result_.success`` still records it.

    `simplex`: rows of X must be mixtures (see the module docstring); False accepts any finite X.
    """

    _mixture_inputs = True

    def __init__(self, n_starts: int = 4, huber_delta: float = 1e-3, bootstrap: int = 0,
                 random_state=None, bounds=None, max_iter: int = 500, simplex: bool = True):
        self.simplex = simplex
        super().__init__(n_starts=n_starts, huber_delta=huber_delta, bootstrap=bootstrap,
                         random_state=random_state, bounds=bounds, max_iter=max_iter)

    def fit(self, X, y):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*ITERATIONS REACHED LIMIT.*")
            return super().fit(X, y)

    def _names(self, d: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None and len(names) == d:
            return [f"t_{n}" for n in names]
        return [f"t_{j}" for j in range(d)]

    def _param_specs(self, X: np.ndarray, y: np.ndarray) -> list[Param]:
        ymin = float(np.min(y))
        c_grid = tuple(float(np.log(f * ymin)) for f in (0.2, 0.5, 0.8, 0.95))
        specs = [Param("c", c_grid, log=False, bounds=(None, float(np.log(ymin)) + 1.0))]
        specs += [Param(n, (0.0,), log=False, bounds=(-50.0, 50.0)) for n in self._names(X.shape[1])]
        return specs

    def _log_predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.logaddexp(theta[0], X @ theta[1:])

    def _log_jac(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        z = X @ theta[1:]
        share_c = 1.0 / (1.0 + np.exp(np.clip(z - theta[0], -700, 700)))  # exp(c) / pred
        return np.column_stack([share_c, X * (1.0 - share_c)[:, None]])

    def _starts(self, X: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        starts = []
        ymin = float(np.min(y))
        for frac in (0.0, 0.5, 0.9):
            floor = frac * ymin
            c = np.log(floor) if floor > 0 else np.log(1e-3 * ymin)
            t, *_ = np.linalg.lstsq(X, np.log(y - floor), rcond=None)
            if np.all(np.isfinite(t)):
                starts.append(np.concatenate([[c], np.clip(t, -49.0, 49.0)]))
        return starts
