"""Data mixing laws of Ye et al. (2024): loss of each validation domain as a function of the
training mixture r (proportions over the training domains).

- MixingLaw (explicit): per validation domain i, ``L_i(r) = c_i + k_i * exp(sum_j t_ij r_j)``,
  all domains fitted at once from y of shape (n, m); the overall loss is ``sum_i s_i L_i`` with
  known validation proportions s (``aggregate=`` or ``predict_total(X, weights)``).
- ImplicitMixingLaw (implicit): the validation set is a mixture of K unknown latent domains,
  ``L(r) = sum_k s_k (c_k + k_k exp(t_k . r))`` with s learned on the simplex, fitted on the
  overall loss y of shape (n,).
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
from scipy.special import expit, softmax
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import check_is_fitted

from .base import ParametricLaw
from .fitting import Param, huber


# Bound of each exponent t_ij. Mixtures with a domain at exactly 0 let an unbounded fit build a cliff
# (t in the thousands, k -> 0: a lower objective on 5Mix, and NaN predictions); within +-30 the
# relative effects of two domains can still differ by e^60. A fit that wants more sits on the bound
# and says so (FitWarning); pass bounds= to widen it.
T_BOUND = 30.0


def _check_proportions(X: np.ndarray) -> None:
    if np.any(X < -1e-9) or np.any(X > 1 + 1e-9):
        raise ValueError("mixture proportions must lie in [0, 1]")


def _sums_to_one(X: np.ndarray) -> bool:
    return bool(np.allclose(X.sum(axis=1), 1.0, atol=1e-6))


def _gauge(k: float, t: np.ndarray) -> tuple[float, np.ndarray]:
    """With proportions summing to one, k exp(t . r) = k e^m exp((t - m) . r) for any m: only k and
    t up to that shift are identified. Fix m = mean(t), so k is the reducible loss at the uniform
    mixture and the t_j are relative effects."""
    m = float(np.mean(t))
    return k * np.exp(m), t - m


def _linearised_start(X: np.ndarray, y: np.ndarray, c: float) -> np.ndarray | None:
    """For a fixed floor c, log(y - c) = log k + t . r is linear: least squares gives (k, t)."""
    if c >= np.min(y):
        return None
    A = np.column_stack([np.ones(len(y)), X])
    coef, *_ = np.linalg.lstsq(A, np.log(y - c), rcond=None)
    return np.concatenate([[c, np.exp(coef[0])], coef[1:]])


class _ProportionLaw(ParametricLaw):
    """A law whose inputs are mixture proportions: rows on the simplex while ``simplex`` is True
    (see :func:`~mixkit.laws.base.check_simplex`), else only proportions in [0, 1]."""

    _input_rule = "mixture proportions must lie in [0, 1]"
    _mixture_inputs = True

    def _probe_X(self, X):
        # Mixing laws are asked about the corners of the simplex (the optimiser goes there): equally
        # good fits that disagree at a single-domain mixture are different answers.
        d = X.shape[1]
        return np.vstack([X, np.eye(d), np.full((1, d), 1.0 / d)])

    def _check_inputs(self, X):
        arr = super()._check_inputs(X)
        _check_proportions(arr)
        return arr


class MixingLaw(_ProportionLaw):
    """Explicit data mixing law ``L_i(r) = c_i + k_i * exp(sum_j t_ij r_j)`` per validation domain.

    X: (n, d) training-domain proportions (a DataFrame keeps the domain names); y: (n,) or (n, m)
    losses on m validation domains, fitted one domain at a time (their parameters are separate).
    Parameters per domain: c, k (log space: positive), t_<j> for each training domain (in
    [-30, 30], :data:`T_BOUND`).
    When every row of X sums to one, k and t are identified only up to ``t + m, k e^-m``; the fit
    reports the representative with mean(t) = 0, so k is the reducible loss at the uniform mixture.

    `aggregate`: optional validation-domain proportions s (length m, or {domain: s_i}) used by
    :meth:`predict_total` for the overall loss ``sum_i s_i L_i`` (Ye et al.'s explicit aggregation).
    `simplex`: rows of X must be mixtures (non-negative, summing to 1 within 1e-3), at fit and at
    predict; False accepts any proportions in [0, 1] (e.g. deliberately unnormalised weights).
    """

    def __init__(self, aggregate=None, n_starts: int = 16, huber_delta: float = 1e-3, bootstrap: int = 0,
                 random_state=None, bounds=None, max_iter: int | None = None, simplex: bool = True):
        self.aggregate = aggregate
        self.simplex = simplex
        super().__init__(n_starts=n_starts, huber_delta=huber_delta, bootstrap=bootstrap,
                         random_state=random_state, bounds=bounds, max_iter=max_iter)


    def _t_names(self, d: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None and len(names) == d:
            return [f"t_{n}" for n in names]
        return [f"t_{j}" for j in range(d)]

    def _param_specs(self, X, y):
        ymin, yspan = float(np.min(y)), float(np.ptp(y)) + 1e-3 * float(np.min(y))
        return [
            Param("c", tuple(ymin * f for f in (0.3, 0.7, 0.95)), log=True),
            Param("k", tuple(yspan * f for f in (0.3, 1.0, 3.0)), log=True),
        ] + [Param(name, (-2.0, 0.0, 1.0), bounds=(-T_BOUND, T_BOUND)) for name in self._t_names(X.shape[1])]

    def _starts(self, X, y):
        # For a fixed floor c the law is linear in log space, so a fine profile over c (how close
        # the floor sits under the smallest loss) finds the basin of the best fit without random
        # search; the best profile points (by the fit's own Huber objective) start the fit.
        ymin = float(np.min(y))
        fractions = np.concatenate([[0.0, 0.5, 0.8, 0.9], 1.0 - np.logspace(-1, -4, 25)])
        starts = [_linearised_start(X, y, f * ymin) for f in fractions]
        starts = [s for s in starts if s is not None]
        for s in starts:
            s[0] = max(s[0], 1e-3 * ymin)  # c = 0 is outside the log-space domain
        scores = [float(np.sum(huber(self._log_predict(s, X) - np.log(y), self.huber_delta))) for s in starts]
        order = np.argsort(scores, kind="stable")
        return [starts[i] for i in order[:6]]

    def _canonical(self, theta, X):
        if not _sums_to_one(X):
            return theta
        k, t = _gauge(theta[1], theta[2:])
        return np.concatenate([[theta[0], k], t])

    def _log_predict(self, theta, X):
        c, k, t = theta[0], theta[1], theta[2:]
        return np.log(c + k * np.exp(X @ t))

    def _batch_model(self, X):
        # z = (log c, log k, t): log(c + k e^{t.r}) = logaddexp(log c, log k + t.r), stable for any t.
        def fun(Z, rows):
            return np.logaddexp(Z[:, [0]], Z[:, [1]] + Z[:, 2:] @ X.T)

        def jac(Z, rows):
            share = expit(Z[:, [1]] + Z[:, 2:] @ X.T - Z[:, [0]])  # the k e^{t.r} term's share
            return np.concatenate([(1.0 - share)[..., None], share[..., None], share[..., None] * X[None]], axis=2)

        return fun, jac

    def _log_jac(self, theta, X):
        c, k, t = theta[0], theta[1], theta[2:]
        e = np.exp(X @ t)
        pred = c + k * e
        return np.column_stack([1.0 / pred, e / pred, (k * e / pred)[:, None] * X])

    def _aggregate_weights(self, weights) -> np.ndarray:
        check_is_fitted(self, "result_")
        w = self.aggregate if weights is None else weights
        if w is None:
            raise ValueError("no aggregation weights: pass weights= or construct the law with aggregate=")
        if isinstance(w, Mapping):
            missing = [o for o in self.output_names_ if o not in w]
            if missing:
                raise ValueError(f"aggregation weights lack validation domain(s) {missing}")
            w = [w[o] for o in self.output_names_]
        w = np.asarray(w, dtype=float).ravel()
        if len(w) != self.n_outputs_:
            raise ValueError(f"got {len(w)} aggregation weights for {self.n_outputs_} validation domains")
        return w

    def predict_total(self, X, weights=None) -> np.ndarray:
        """Overall loss ``sum_i s_i L_i(r)`` with s = `weights` (or the law's `aggregate`), (n,)."""
        w = self._aggregate_weights(weights)
        pred = np.asarray(self.predict(X))
        pred = pred[:, None] if pred.ndim == 1 else pred
        return pred @ w


class ImplicitMixingLaw(_ProportionLaw):
    """Implicit mixing law: ``L(r) = sum_k s_k (c_k + k_k exp(t_k . r))`` over K latent domains.

    X: (n, d) proportions; y: (n,) overall validation losses (a column (n, 1) is read as (n,), with
    scikit-learn's DataConversionWarning). The latent proportions s live on the simplex through a
    softmax of free logits u_1..u_{K-1} (u_0 = 0). Note that s_k only rescales
    c_k and k_k, so s, c and k are identified only up to that trade-off; predictions are not
    affected, and the law is mainly useful for its predictions. As in MixingLaw, proportions that sum
    to one leave a shift of each t_k free; it is fixed at mean(t_k) = 0. Fitted attribute
    ``latent_weights_`` holds s. `simplex` as in :class:`MixingLaw`.
    """

    _separable = False

    def __init__(self, n_latent: int = 2, n_starts: int = 16, huber_delta: float = 1e-3, bootstrap: int = 0,
                 random_state=None, bounds=None, max_iter: int | None = None, simplex: bool = True):
        self.n_latent = n_latent
        self.simplex = simplex
        super().__init__(n_starts=n_starts, huber_delta=huber_delta, bootstrap=bootstrap,
                         random_state=random_state, bounds=bounds, max_iter=max_iter)


    def fit(self, X, y):
        if not isinstance(self.n_latent, (int, np.integer)) or self.n_latent < 1:
            raise ValueError(f"n_latent must be a positive integer, got {self.n_latent!r}")
        super().fit(X, y)
        K = self.n_latent
        self.latent_weights_ = softmax(np.concatenate([[0.0], self.thetas_[0][: K - 1]]))
        return self

    def _check_y(self, y):
        arr = super()._check_y(y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; ImplicitMixingLaw "
                          "fits the overall loss, so y is read as (n,)", DataConversionWarning, stacklevel=5)
            return arr[:, 0]
        if arr.ndim != 1:
            raise ValueError("ImplicitMixingLaw fits the overall loss: y must be 1-D (n,)")
        return arr

    def _split(self, theta, d):
        K = self.n_latent
        u = np.concatenate([[0.0], theta[: K - 1]])
        rest = theta[K - 1:].reshape(K, 2 + d)
        return softmax(u), rest[:, 0], rest[:, 1], rest[:, 2:]

    def _param_specs(self, X, y):
        K, d = self.n_latent, X.shape[1]
        ymin, yspan = float(np.min(y)), float(np.ptp(y)) + 1e-3 * float(np.min(y))
        specs = [Param(f"u_{k}", (0.0,)) for k in range(1, K)]
        for k in range(K):
            specs += [Param(f"c_{k}", (ymin * 0.5, ymin * 0.9), log=True), Param(f"k_{k}", (yspan, 3 * yspan), log=True)]
            specs += [Param(f"t_{k}_{j}", (-2.0, 1.0)) for j in range(d)]
        return specs

    def _starts(self, X, y):
        # One-latent solutions copied to every latent domain, with the exponents spread apart so the
        # latent domains can specialise. The spread has its own stream seeded by random_state (not
        # the fit's generator), so random_state=0 draws what the fixed seed 0 used to draw.
        K, d = self.n_latent, X.shape[1]
        rng = np.random.default_rng(self.random_state)
        out = []
        for f in (0.5, 0.8, 0.95):
            base = _linearised_start(X, y, f * float(np.min(y)))
            if base is None:
                continue
            for _ in range(2):
                blocks = []
                for k in range(K):
                    t = base[2:] + (rng.normal(0.0, 1.0, d) if k else 0.0)
                    blocks.append(np.concatenate([[base[0], base[1]], t]))
                out.append(np.concatenate([np.zeros(K - 1)] + blocks))
        return out

    def _canonical(self, theta, X):
        if not _sums_to_one(X):
            return theta
        K, d = self.n_latent, X.shape[1]
        theta = theta.copy()
        blocks = theta[K - 1:].reshape(K, 2 + d)
        for row in blocks:
            row[1], row[2:] = _gauge(row[1], row[2:])
        theta[K - 1:] = blocks.ravel()
        return theta

    def _log_predict(self, theta, X):
        s, c, k, t = self._split(theta, X.shape[1])
        Lk = c[None, :] + k[None, :] * np.exp(X @ t.T)  # (n, K) latent-domain losses
        return np.log(Lk @ s)

    def _log_jac(self, theta, X):
        K, d = self.n_latent, X.shape[1]
        s, c, k, t = self._split(theta, d)
        e = np.exp(X @ t.T)
        Lk = c[None, :] + k[None, :] * e
        L = Lk @ s
        cols = [s[j] * (Lk[:, j] - L) for j in range(1, K)]  # softmax logits
        for j in range(K):
            cols += [np.full(len(X), s[j]), s[j] * e[:, j]]
            cols += list(((s[j] * k[j] * e[:, j])[:, None] * X).T)
        J = np.column_stack(cols)
        return J / L[:, None]

    def latent_losses(self, X) -> np.ndarray:
        """Predicted loss of each latent domain, (n, K)."""
        Xa = self._validate_predict_X(X)
        s, c, k, t = self._split(self.thetas_[0], Xa.shape[1])
        return c[None, :] + k[None, :] * np.exp(Xa @ t.T)
