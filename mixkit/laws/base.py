"""The estimator contract every mixkit law follows, and the base class of the parametric laws.

Laws are scikit-learn regressors: hyperparameters only in ``__init__``, data only in ``fit(X, y)``,
``fit`` returns self, fitted state ends in ``_``, ``predict`` before ``fit`` raises
``sklearn.exceptions.NotFittedError``, ``score`` is R^2. So ``clone``, ``get_params``,
``cross_val_score`` and pipelines work on them.

A parametric law subclasses :class:`ParametricLaw` and supplies

- ``_param_specs(X, y)``: the list of :class:`~mixkit.laws.fitting.Param` (names, log space, start
  grid, bounds), may depend on the data's scale and shape;
- ``_log_predict(theta, X)``: log of the predicted loss for natural parameters ``theta``;
- optionally ``_log_jac(theta, X)``: its (n, p) Jacobian (faster, exact gradients).

``y`` may be (n,) or (n, m). Laws whose outputs share no parameters (``_separable = True``, e.g. one
mixing law per validation domain) are fitted column by column with the same specs; the others
see the whole y.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from .fitting import FitResult, Param, robust_fit


def as_2d(X, name: str = "X") -> np.ndarray:
    """Float (n, d) array from a 1-D/2-D array or DataFrame, with a clear error otherwise."""
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return arr


def align_columns(est, X):
    """X with its DataFrame columns in the order `est` was fitted on (arrays pass through).

    Columns are matched by name, not position: run tables sort domains alphabetically, and a
    silently permuted mixture would give confident, wrong predictions.
    """
    names = getattr(est, "feature_names_in_", None)
    if not isinstance(X, pd.DataFrame) or names is None:
        return X
    given = [str(c) for c in X.columns]
    if len(given) != len(names) or any(n not in given for n in names):
        raise ValueError(f"X columns {given} do not match the columns the law was fitted on {list(names)}")
    return X.set_axis(given, axis=1)[list(names)]


def as_loss_array(y) -> np.ndarray:
    """y as a finite float array of shape (n,) or (n, m), with clear errors otherwise."""
    try:
        arr = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y must be numeric losses: {exc}") from None
    if arr.ndim not in (1, 2):
        raise ValueError(f"y must be (n,) or (n, m), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("y (losses) contains NaN or infinite values")
    return arr


def _check_y(y) -> tuple[np.ndarray, list[str] | None]:
    names = [str(c) for c in y.columns] if isinstance(y, pd.DataFrame) else None
    arr = as_loss_array(y)
    if np.any(arr <= 0):
        raise ValueError("y (losses) must be positive: the laws are fitted on log-loss residuals")
    return arr, names


class ParametricLaw(RegressorMixin, BaseEstimator):
    """Base of the parametric laws: robust multi-start Huber fit in log-loss space (see fitting.py).

    Parameters
    ----------
    n_starts : number of L-BFGS-B runs (half from the best grid points, half random), best kept.
    huber_delta : Huber threshold on log-loss residuals (sum reduction).
    bootstrap : number of case-resample refits for confidence/prediction intervals (0 = none).
    random_state : seed or Generator for the random starts and the bootstrap.
    bounds : optional {param name: (lower, upper)} overriding the law's defaults (natural scale).
    max_iter : L-BFGS-B iteration cap per start.

    Fitted attributes: ``result_`` (FitResult; for several outputs the combined one with names
    ``<output>:<param>``), ``results_`` ({output: FitResult}), ``params_`` (dict for one output,
    DataFrame outputs x params for several), ``n_features_in_``, ``n_outputs_``, ``output_names_``.
    """

    _separable = True
    _n_inputs: int | None = None  # expected columns of X, None = any

    def __init__(self, n_starts: int = 16, huber_delta: float = 1e-3, bootstrap: int = 0,
                 random_state=None, bounds=None, max_iter: int = 2000):
        self.n_starts = n_starts
        self.huber_delta = huber_delta
        self.bootstrap = bootstrap
        self.random_state = random_state
        self.bounds = bounds
        self.max_iter = max_iter

    # -- hooks -----------------------------------------------------------------------------------
    def _param_specs(self, X: np.ndarray, y: np.ndarray) -> list[Param]:
        raise NotImplementedError

    def _log_predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    _log_jac = None  # subclasses may define _log_jac(theta, X) -> (n, p)

    def _starts(self, X: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """Extra natural-scale start vectors (e.g. from a linearised solve); none by default."""
        return []

    def _canonical(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Map a fitted parameter vector to a canonical one that predicts the same on X (for laws
        with a flat direction, e.g. mixing laws when proportions sum to one); identity by default."""
        return theta

    def _output_X(self, X: np.ndarray, j: int) -> np.ndarray:
        """Inputs seen by output j of a separable law (all of X by default)."""
        return X

    def _prepare_X(self, X) -> np.ndarray:
        arr = as_2d(X)
        if self._n_inputs is not None and arr.shape[1] != self._n_inputs:
            raise ValueError(f"{type(self).__name__} expects X with {self._n_inputs} column(s), got {arr.shape[1]}")
        return arr

    # -- sklearn API -------------------------------------------------------------------------------
    def _specs_with_bounds(self, X, y) -> list[Param]:
        specs = self._param_specs(X, y)
        if self.bounds:
            names = {p.name for p in specs}
            unknown = set(self.bounds) - names
            if unknown:
                raise ValueError(f"bounds given for unknown parameter(s) {sorted(unknown)}; this law has {sorted(names)}")
            specs = [Param(p.name, p.grid, p.log, tuple(self.bounds.get(p.name, p.bounds))) for p in specs]
        return specs

    def fit(self, X, y):
        """Fit the law to inputs X and losses y; returns self."""
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_  # a refit on an array must not keep the old names
        Xa = self._prepare_X(X)
        ya, ynames = _check_y(y)
        if Xa.shape[0] != ya.shape[0]:
            raise ValueError(f"X has {Xa.shape[0]} rows but y has {ya.shape[0]}")
        self.n_features_in_ = int(Xa.shape[1])
        self._y_ndim = ya.ndim
        Y = ya[:, None] if ya.ndim == 1 else ya
        self.n_outputs_ = int(Y.shape[1])
        self.output_names_ = ynames or ([f"y{j}" for j in range(Y.shape[1])] if ya.ndim == 2 else ["y"])
        rng = np.random.default_rng(self.random_state)
        law = type(self).__name__
        jac = self._log_jac if self._log_jac is not None else None
        self._check_outputs(Xa, Y)
        if self._separable:
            columns = [(name, self._output_X(Xa, j), Y[:, j]) for j, name in enumerate(self.output_names_)]
        else:
            columns = [("y", Xa, ya)]
        thetas, results, specs_all = [], {}, []
        for name, Xj, yj in columns:
            specs = self._specs_with_bounds(Xj, yj)
            theta, res = robust_fit(
                self._log_predict, specs, Xj, yj, log_jac=jac, huber_delta=self.huber_delta,
                n_starts=self.n_starts, bootstrap=self.bootstrap, random_state=rng,
                max_iter=self.max_iter, law=law if len(columns) == 1 else f"{law}[{name}]",
                starts=self._starts(Xj, yj),
            )
            theta = self._canonical(theta, Xj)
            boot = res.bootstrap_params
            if boot is not None:
                boot = np.array([self._canonical(b, Xj) for b in boot])
            res = dataclasses.replace(res, params=dict(zip(res.params, map(float, theta))), bootstrap_params=boot)
            thetas.append(theta)
            results[name] = res
            specs_all.append(specs)
        self.thetas_ = thetas
        self.results_ = results
        self.result_ = next(iter(results.values())) if len(results) == 1 else FitResult.combine(results, law=law)
        names = [p.name for p in specs_all[0]]
        if len(results) == 1:
            self.params_ = dict(self.result_.params)
        else:
            self.params_ = pd.DataFrame([r.params for r in results.values()], index=list(results), columns=names)
        return self

    def _check_outputs(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Hook for laws that tie outputs to inputs (BiMix: output i is training domain i)."""

    def _check_X_predict(self, X) -> np.ndarray:
        check_is_fitted(self, "result_")
        Xa = self._prepare_X(align_columns(self, X))
        if Xa.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {Xa.shape[1]} columns; the law was fitted with {self.n_features_in_}")
        return Xa

    def _predict_with(self, thetas: Sequence[np.ndarray], Xa: np.ndarray) -> np.ndarray:
        if self._separable:
            cols = [np.exp(self._log_predict(np.asarray(t, dtype=float), self._output_X(Xa, j))) for j, t in enumerate(thetas)]
        else:
            cols = [np.exp(self._log_predict(np.asarray(t, dtype=float), Xa)) for t in thetas]
        out = np.column_stack(cols)
        return out[:, 0] if self._y_ndim == 1 else out

    def predict(self, X) -> np.ndarray:
        """Predicted losses, (n,) or (n, m) like the y it was fitted on."""
        Xa = self._check_X_predict(X)
        return self._predict_with(self.thetas_, Xa)

    def predict_interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Percentile-bootstrap (1 - alpha) interval of the predicted mean loss: (lower, upper)."""
        Xa = self._check_X_predict(X)
        boots = [r.bootstrap_params for r in self.results_.values()]
        if any(b is None or len(b) == 0 for b in boots):
            raise ValueError("prediction intervals need a bootstrap: refit with bootstrap=<number of resamples>")
        n_boot = min(len(b) for b in boots)
        preds = np.stack([self._predict_with([b[i] for b in boots], Xa) for i in range(n_boot)])
        lo, hi = np.nanquantile(preds, [alpha / 2, 1 - alpha / 2], axis=0)
        return lo, hi

    def summary(self) -> str:
        check_is_fitted(self, "result_")
        return "\n\n".join(r.summary() for r in self.results_.values())
