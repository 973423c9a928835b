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

``params_`` has one shape for every law that has it (the parametric laws, including the RegMix
log-linear law): a pandas DataFrame with one row per fitted output (index: the output names, "y"
when y was 1-D or the law fits the whole y at once) and one column per parameter. A single-output
law's parameters are ``law.params_.iloc[0]`` (a Series) or ``law.result_.params`` (a dict).

Every law, parametric or not (:class:`LossRegressor`), records ``n_features_in_``,
``feature_names_in_`` (DataFrame X), ``n_outputs_``, ``output_names_`` and ``y_ndim_`` at fit, and
predicts (n,) after a 1-D y, (n, m) after a 2-D one.

Laws whose X is a mixture (the mixing laws, the RegMix regressors) refuse, at fit and at predict,
rows that are not one (:func:`check_simplex`): every weight finite and non-negative (down to
-1e-9, float noise), each row summing to 1 within ``SIMPLEX_ATOL`` = 1e-3, the run table's
tolerance for stored, rounded weights (a one-column X is one domain's share, in [0, 1 + 1e-3]).
``[1, 1, 1]`` and ``[0, 0, 0]`` would otherwise get confident predictions for mixtures nobody can
train on. Their ``simplex=False`` turns the check off for users who deliberately fit on
unnormalised weights (e.g. token counts). BiMix reads each share alone and checks only its range.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted

from mixkit.table import WEIGHT_SUM_ATOL

from .domain import FittedDomain, warn_outside
from .fitting import FitResult, Param, local_refit, robust_fit
from .lm import levenberg_marquardt

# A law's mixture rows sum to one within this: the run table's tolerance, so weights read from any
# valid run table pass.
SIMPLEX_ATOL = WEIGHT_SUM_ATOL
# Weights this far below zero are float noise of an optimiser's projection, not negative weights.
NEGATIVE_ATOL = 1e-9


def as_float_array(X, name: str = "X") -> np.ndarray:
    """Float 1-D or 2-D array from an array-like or DataFrame.

    sklearn's check_array gives the standard errors for sparse, complex, empty and NaN/infinite
    input, so a law fails on those the way every scikit-learn estimator does.
    """
    if (isinstance(X, np.ndarray) and X.dtype.kind == "f" and X.ndim in (1, 2) and X.size
            and np.isfinite(X).all()):
        # Valid float arrays skip check_array's overhead (5x the cost of predicting one mixture),
        # which the optimisers pay on every call.
        return X.astype(np.float64, copy=False)
    if X is None or np.isscalar(X):
        raise ValueError(f"{name} must be a 1-D or 2-D array of numbers, got {X!r}")
    arr = check_array(X, accept_sparse=False, ensure_2d=False, dtype=np.float64, input_name=name,
                      ensure_all_finite=False)
    finite = np.isfinite(arr) if arr.ndim == 1 else np.isfinite(arr).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"Input {name} contains NaN or infinity: row {i} is {_show(arr[i])} "
                         f"({int((~finite).sum())} such row(s))")
    return arr


def _show(row) -> str:
    return np.array2string(np.asarray(row), precision=4, separator=", ", threshold=12)


def check_simplex(X: np.ndarray, law: str, atol: float = SIMPLEX_ATOL, partial: bool = False) -> None:
    """Refuse rows of a float (n, d) X that are not mixtures, naming the first such row.

    A mixture row is finite, non-negative (down to -``NEGATIVE_ATOL``) and sums to 1 within
    `atol`; with `partial` (some of a mixture's domains) it sums to at most 1 + `atol`. A single
    column is always partial: a one-domain mixture is the constant 1, so a one-column X is one
    domain's share r in [0, 1] (e.g. the two-domain mixing law L(r) = c + k exp(t r)).
    """
    partial = partial or X.shape[1] == 1
    rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if rows.size:
        raise ValueError(f"Input X contains NaN or infinity: row {rows[0]} is {_show(X[rows[0]])}")
    off = "pass simplex=False to fit on weights that are deliberately not a mixture"
    rows = np.flatnonzero((X < -NEGATIVE_ATOL).any(axis=1))
    if rows.size:
        raise ValueError(f"Negative values in data passed to {law}: row {rows[0]} of X is {_show(X[rows[0]])}, "
                         f"not a mixture ({rows.size} such row(s)); weights must be >= 0 ({off})")
    sums = X.sum(axis=1)
    bad = sums > 1 + atol if partial else np.abs(sums - 1.0) > atol
    rows = np.flatnonzero(bad)
    if rows.size:
        rule = f"at most 1 + {atol:g}" if partial else f"1 within {atol:g}"
        raise ValueError(f"{law} takes mixtures: row {rows[0]} of X is {_show(X[rows[0]])}, summing to "
                         f"{sums[rows[0]]:.6g}, but a mixture's weights sum to {rule} ({rows.size} such row(s); "
                         f"{off})")


def as_2d(X, name: str = "X") -> np.ndarray:
    """Float (n, d) array from a 1-D/2-D array or DataFrame; a 1-D X is one input column."""
    arr = as_float_array(X, name)
    return arr[:, None] if arr.ndim == 1 else arr


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
    if y is None:
        raise ValueError("this law requires y to be passed, but the target y is None")
    try:
        raw = np.asarray(y)
        if np.iscomplexobj(raw):
            raise TypeError("Complex data not supported")
        arr = raw.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y must be numeric losses: {exc}") from None
    if arr.ndim not in (1, 2):
        raise ValueError(f"y must be (n,) or (n, m), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("y (losses) contains NaN or infinite values")
    return arr


def output_names(y, arr: np.ndarray) -> list[str]:
    """Names of the outputs: a DataFrame's columns, y0..y{m-1} for another 2-D y, "y" for 1-D y."""
    if isinstance(y, pd.DataFrame):
        return [str(c) for c in y.columns]
    return [f"y{j}" for j in range(arr.shape[1])] if arr.ndim == 2 else ["y"]


class LossRegressor(RegressorMixin, BaseEstimator):
    """What every law records when it is fitted and checks when it predicts, written once.

    ``fit`` (through :meth:`_validate_fit_data`) records ``feature_names_in_`` (DataFrame X only),
    ``n_features_in_``, ``n_outputs_``, ``output_names_`` (see :func:`output_names`) and
    ``y_ndim_``, so that ``predict`` returns (n,) after a 1-D y and (n, m) after a 2-D one.
    ``predict`` (through :meth:`_validate_predict_X`) matches DataFrame columns by name and checks
    the number of features. Subclasses name the attribute that proves a fit (``_fitted_attr``) and
    may add input checks (``_check_inputs``) and loss checks (``_check_y``).
    """

    _fitted_attr: str | None = None  # set last by fit; None: any attribute ending in "_"
    _multi_output = True  # y may be (n, m)
    _mixture_inputs = False  # rows of X are mixtures, checked (check_simplex) while self.simplex

    @property
    def _checks_simplex(self) -> bool:
        return self._mixture_inputs and bool(getattr(self, "simplex", True))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = self._multi_output
        tags.input_tags.positive_only = self._checks_simplex
        return tags

    def _check_inputs(self, X: np.ndarray) -> np.ndarray:
        """Law-specific checks of a float (n, d) X, at fit and at predict: the simplex check of
        the mixture laws while ``simplex`` is on; subclasses add theirs after calling this."""
        if self._checks_simplex:
            check_simplex(X, type(self).__name__)
        return X

    def _check_y(self, y) -> np.ndarray:
        return as_loss_array(y)

    def _validate_fit_data(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        """Checked (X (n, d), y (n,) or (n, m)) arrays; records the fitted shapes and names."""
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_  # a refit on an array must not keep the old names
        Xa = as_2d(X)
        ya = self._check_y(y)  # before the law's input checks: a missing y is the clearer error
        if Xa.shape[0] != ya.shape[0]:
            raise ValueError(f"X has {Xa.shape[0]} rows but y has {ya.shape[0]}")
        Xa = self._check_inputs(Xa)
        self.n_features_in_ = int(Xa.shape[1])
        self.y_ndim_ = int(ya.ndim)
        self.n_outputs_ = 1 if ya.ndim == 1 else int(ya.shape[1])
        self.output_names_ = output_names(y, ya)
        return Xa, ya

    def _validate_predict_X(self, X) -> np.ndarray:
        """X for predict: fitted law, columns matched by name, the fitted number of features."""
        check_is_fitted(self, self._fitted_attr)
        arr = as_float_array(align_columns(self, X))
        name = type(self).__name__
        if arr.ndim == 1 and self.n_features_in_ > 1:
            raise ValueError(f"X is 1-D but {name} was fitted on {self.n_features_in_} features. Reshape your "
                             "data: X.reshape(1, -1) for a single sample")
        Xa = arr[:, None] if arr.ndim == 1 else arr
        if Xa.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {Xa.shape[1]} features, but {name} is expecting {self.n_features_in_} "
                             "features as input")
        return self._check_inputs(Xa)

    def _shaped_like_y(self, out: np.ndarray) -> np.ndarray:
        """(n, m) predictions as (n,) when the law was fitted on a 1-D y."""
        return out[:, 0] if self.y_ndim_ == 1 else out


class ParametricLaw(LossRegressor):
    """Base of the parametric laws: robust multi-start Huber fit in log-loss space (see fitting.py).

    Parameters
    ----------
    n_starts : number of L-BFGS-B runs (half from the best grid points, half random), best kept.
    huber_delta : Huber threshold on log-loss residuals (sum reduction).
    bootstrap : number of case-resample refits for confidence/prediction intervals (0 = none).
    random_state : seed or Generator for every random draw of the fit (random starts, bootstrap,
        and any law-specific start perturbation); the same seed gives the same numbers.
    bounds : optional {param name: (lower, upper)} overriding the law's defaults (natural scale).
    max_iter : L-BFGS-B iteration cap per start; None (default) scales it with the number of
        parameters (:func:`~mixkit.laws.fitting.iteration_budget`). A best start that stops on
        its cap warns and sets ``result_.hit_iter_cap`` (``result_.converged`` is then False).

    Fitted attributes: ``params_`` (see the module docstring), ``result_`` (FitResult; for several
    outputs the combined one with names ``<output>:<param>``), ``results_`` ({output: FitResult}),
    ``thetas_`` (one natural-scale parameter vector per fitted output), ``n_iter_`` (L-BFGS-B
    iterations of the best start, summed over outputs), ``fit_domain_`` (the fitted inputs' ranges
    and, for mixtures, hull: :meth:`check_domain`) and the shapes recorded by :class:`LossRegressor`.

    ``predict(X, return_interval=True)`` adds a bootstrap interval (fit with ``bootstrap`` > 0);
    :meth:`predict_frame` gives predictions, interval and extrapolation flags in one table and
    warns (ExtrapolationWarning, with the distance) about queries outside the fitted region.
    """

    _separable = True
    _n_inputs: int | None = None  # expected columns of X, None = any
    _input_rule: str | None = None  # why X must be >= 0 (said in the error); None: any sign
    _fitted_attr = "result_"
    _log_inputs = False  # inputs are scales (sizes, tokens, steps): domain distances in decades

    def __init__(self, n_starts: int = 16, huber_delta: float = 1e-3, bootstrap: int = 0,
                 random_state=None, bounds=None, max_iter: int | None = None):
        self.n_starts = n_starts
        self.huber_delta = huber_delta
        self.bootstrap = bootstrap
        self.random_state = random_state
        self.bounds = bounds
        self.max_iter = max_iter

    @property
    def _multi_output(self) -> bool:
        return self._separable  # a law fitted on the whole y at once takes one output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True  # losses, fitted on log residuals
        tags.input_tags.positive_only = self._input_rule is not None or self._checks_simplex
        return tags

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

    def _batch_model(self, X: np.ndarray):
        """(fun, jac) giving log predictions (k, n) and their Jacobian (k, n, p) for k parameter
        vectors at once in optimiser coordinates (log of the log-space parameters), or None: a law
        that has it gets many cheap batched starts (see robust_fit)."""
        return None

    def _probe_X(self, X: np.ndarray) -> np.ndarray:
        """Points where near-equal optima must agree for the fit to count as identified: the fitted
        X by default; laws add the corners they are typically asked about (extrapolation)."""
        return X

    def _log_columns(self, X: np.ndarray) -> tuple[bool, ...]:
        """Which columns of X are scales (distances beyond the fitted range in decades)."""
        return (self._log_inputs,) * X.shape[1]

    def _hull_columns(self, X: np.ndarray) -> tuple[int, ...]:
        """Columns of X that form a mixture (their convex hull is part of the fitted domain)."""
        return tuple(range(X.shape[1])) if self._mixture_inputs else ()

    def _output_X(self, X: np.ndarray, j: int) -> np.ndarray:
        """Inputs seen by output j of a separable law (all of X by default)."""
        return X

    def _check_outputs(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Hook for laws that tie outputs to inputs (BiMix: output i is training domain i)."""

    def _check_inputs(self, X: np.ndarray) -> np.ndarray:
        X = super()._check_inputs(X)
        name = type(self).__name__
        if self._input_rule is not None and np.any(X < 0):
            raise ValueError(f"Negative values in data passed to {name}: {self._input_rule}")
        if self._n_inputs is not None and X.shape[1] != self._n_inputs:
            raise ValueError(f"{name} expects X with {self._n_inputs} column(s), got n_features={X.shape[1]}")
        return X

    def _check_y(self, y) -> np.ndarray:
        arr = as_loss_array(y)
        if np.any(arr <= 0):
            raise ValueError("y (losses) must be positive: the laws are fitted on log-loss residuals")
        return arr

    # -- fitting ---------------------------------------------------------------------------------
    def _specs_with_bounds(self, X, y) -> list[Param]:
        specs = self._param_specs(X, y)
        if self.bounds:
            names = {p.name for p in specs}
            unknown = set(self.bounds) - names
            if unknown:
                raise ValueError(f"bounds given for unknown parameter(s) {sorted(unknown)}; this law has {sorted(names)}")
            specs = [Param(p.name, p.grid, p.log, tuple(self.bounds.get(p.name, p.bounds))) for p in specs]
        return specs

    def _fit_problems(self, X: np.ndarray, y: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(output name, X, y) of each separate fit: one per output, or one for the whole y."""
        if not self._separable:
            return [("y", X, y)]
        Y = y[:, None] if y.ndim == 1 else y
        return [(name, self._output_X(X, j), Y[:, j]) for j, name in enumerate(self.output_names_)]

    def _fit_one(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator, label: str):
        """Robust fit of one problem: (canonical theta, its FitResult)."""
        specs = self._specs_with_bounds(X, y)
        jac = self._log_jac if self._log_jac is not None else None
        theta, res = robust_fit(
            self._log_predict, specs, X, y, log_jac=jac, huber_delta=self.huber_delta,
            n_starts=self.n_starts, bootstrap=self.bootstrap, random_state=rng,
            max_iter=self.max_iter, law=label, starts=self._starts(X, y), probe=self._probe_X(X),
            batch_model=self._batch_model(X),
        )
        theta = self._canonical(theta, X)
        boot = res.bootstrap_params
        if boot is not None:
            boot = np.array([self._canonical(b, X) for b in boot])
        res = dataclasses.replace(res, params=dict(zip(res.params, map(float, theta))), bootstrap_params=boot)
        return theta, res

    def fit(self, X, y):
        """Fit the law to inputs X and losses y; returns self."""
        Xa, ya = self._validate_fit_data(X, y)
        self._check_outputs(Xa, ya[:, None] if ya.ndim == 1 else ya)
        rng = np.random.default_rng(self.random_state)
        law = type(self).__name__
        problems = self._fit_problems(Xa, ya)
        thetas, results = [], {}
        for name, Xj, yj in problems:
            label = law if len(problems) == 1 else f"{law}[{name}]"
            theta, results[name] = self._fit_one(Xj, yj, rng, label)
            thetas.append(theta)
        self.thetas_ = thetas
        self.results_ = results
        self.result_ = next(iter(results.values())) if len(results) == 1 else FitResult.combine(results, law=law)
        names = list(next(iter(results.values())).params)
        self.params_ = pd.DataFrame([r.params for r in results.values()], index=list(results), columns=names)
        self.n_iter_ = self.result_.n_iter
        self.fit_domain_ = FittedDomain.from_X(Xa, getattr(self, "feature_names_in_", None),
                                               self._log_columns(Xa), self._hull_columns(Xa))
        return self

    # -- prediction ------------------------------------------------------------------------------
    def _predict_with(self, thetas: Sequence[np.ndarray], Xa: np.ndarray) -> np.ndarray:
        if self._separable:
            cols = [np.exp(self._log_predict(np.asarray(t, dtype=float), self._output_X(Xa, j))) for j, t in enumerate(thetas)]
        else:
            cols = [np.exp(self._log_predict(np.asarray(t, dtype=float), Xa)) for t in thetas]
        return self._shaped_like_y(np.column_stack(cols))

    def predict(self, X, return_interval: bool = False, alpha: float = 0.05):
        """Predicted losses, (n,) or (n, m) like the y it was fitted on; with `return_interval`,
        ``(prediction, lower, upper)`` where [lower, upper] is the percentile-bootstrap (1 - alpha)
        interval (the law must be fitted with ``bootstrap`` > 0)."""
        Xa = self._validate_predict_X(X)
        pred = self._predict_with(self.thetas_, Xa)
        if not return_interval:
            return pred
        lo, hi = self._interval(Xa, alpha)
        return pred, lo, hi

    def predict_interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Percentile-bootstrap (1 - alpha) interval of the predicted mean loss: (lower, upper)."""
        return self._interval(self._validate_predict_X(X), alpha)

    def _interval(self, Xa: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        boots = [r.bootstrap_params for r in self.results_.values()]
        if any(b is None or len(b) == 0 for b in boots):
            raise ValueError("prediction intervals need a bootstrap: refit with bootstrap=<number of resamples>")
        n_boot = min(len(b) for b in boots)
        preds = np.stack([self._predict_with([b[i] for b in boots], Xa) for i in range(n_boot)])
        lo, hi = np.nanquantile(preds, [alpha / 2, 1 - alpha / 2], axis=0)
        return lo, hi

    def check_domain(self, X) -> pd.DataFrame:
        """Per query row: outside_range / range_distance / range_column (per-column fitted range,
        scale inputs in decades) and, for mixture laws, outside_hull / hull_distance."""
        return self.fit_domain_.check(self._validate_predict_X(X))

    def predict_frame(self, X, alpha: float | None = 0.05, warn: bool = True) -> pd.DataFrame:
        """Predictions with their (1 - alpha) bootstrap interval (alpha None: none) and the
        extrapolation flags of :meth:`check_domain`, one row per query (columns ``pred``, ``lower``,
        ``upper`` per output, suffixed ``:<output>`` when there are several); warns about queries
        outside the fitted region with their distance."""
        Xa = self._validate_predict_X(X)
        pred = np.atleast_2d(self._predict_with(self.thetas_, Xa).T).T
        cols = {}
        names = self.output_names_ if pred.shape[1] > 1 else [None]
        bounds = self._interval(Xa, alpha) if alpha is not None else None
        for j, name in enumerate(names):
            tag = "" if name is None else f":{name}"
            cols[f"pred{tag}"] = pred[:, j]
            if bounds is not None:
                cols[f"lower{tag}"] = np.atleast_2d(bounds[0].T).T[:, j]
                cols[f"upper{tag}"] = np.atleast_2d(bounds[1].T).T[:, j]
        flags = self.fit_domain_.check(Xa)
        if warn:
            warn_outside(self.fit_domain_, flags, type(self).__name__)
        return pd.concat([pd.DataFrame(cols), flags], axis=1)

    def warm_refit(self, X, y, sample_weight=None):
        """A copy of this fitted law refitted on (X, y) with one local optimisation per output
        started at the current parameters (no grid, no random starts): a bootstrap replicate's fit.
        `sample_weight`: case weights (e.g. bootstrap counts). Laws with a batched model refit all
        outputs at once."""
        check_is_fitted(self, "result_")
        Xa, ya = as_2d(X), self._check_y(y)
        Y = ya[:, None] if ya.ndim == 1 else ya
        problems = ([("y", Xa, ya)] if not self._separable
                    else [(n, self._output_X(Xa, j), Y[:, j]) for j, n in enumerate(self.output_names_)])
        batch = self._batch_model(Xa) if self._separable else None
        if batch is not None:
            thetas = self._batch_refit(batch, Xa, Y, sample_weight)
        else:
            thetas = []
            for (_, Xj, yj), theta0 in zip(problems, self.thetas_):
                specs = self._specs_with_bounds(Xj, yj)
                thetas.append(local_refit(self._log_predict, specs, Xj, yj, theta0, log_jac=self._log_jac,
                                          huber_delta=self.huber_delta, max_iter=self.max_iter, weight=sample_weight))
        new = copy.copy(self)
        new.thetas_ = [self._canonical(t, Xa) for t in thetas]
        return new

    def _batch_refit(self, batch, Xa: np.ndarray, Y: np.ndarray, sample_weight) -> list[np.ndarray]:
        """Every output's local refit at once (batched Levenberg-Marquardt from the current fit)."""
        specs = self._specs_with_bounds(Xa, Y[:, 0])
        lower = np.array([-np.inf if b[0] is None else b[0] for b in (p.opt_bounds() for p in specs)])
        upper = np.array([np.inf if b[1] is None else b[1] for b in (p.opt_bounds() for p in specs)])
        Z0 = np.array([[p.to_opt(v) for p, v in zip(specs, theta)] for theta in self.thetas_])
        w = None if sample_weight is None else np.broadcast_to(np.asarray(sample_weight, float), Y.T.shape)
        Z, *_ = levenberg_marquardt(batch[0], batch[1], Z0, np.log(Y.T), np.ones(Y.T.shape, dtype=bool),
                                    self.huber_delta, lower, upper, 500, weight=w)
        return [np.array([p.from_opt(v) for p, v in zip(specs, z)]) for z in Z]

    def summary(self) -> str:
        check_is_fitted(self, "result_")
        return "\n\n".join(r.summary() for r in self.results_.values())
