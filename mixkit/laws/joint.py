"""One law over model size N, training tokens D and the mixture h (Shukor et al. 2025).

*Scaling Laws for Optimal Data Mixtures* (Shukor, Bethune, Busbridge, Grangier, Fini, El-Nouby,
Ablin; arXiv:2507.09404) fit the loss of a target domain as one surface over (N, D, h), so a few
small runs fix the loss of any mixture at any scale. Two forms, with h on the simplex over k
training domains:

- additive:  ``L = E + A / N^alpha + B / D^beta + 1 / (sum_j C_j h_j^gamma_j)``
- joint:     ``L = E + A_h / N^alpha + B_h / D^beta + 1 / (sum_j C_j h_j^gamma_j)`` with
  ``A_h = (sum_j CA_j h_j)^gammaA`` and ``B_h = (sum_j CB_j h_j)^gammaB``: the mixture also sets
  how fast the loss falls with size and data.

The joint form is written here as we read the paper's parametrisation (the size and data
coefficients become power functions of a linear score of h); the sources reachable while writing
this (the paper's abstract) did not show the equation, so check it against the paper before
quoting parameters. Fitting follows mixkit's robust fitter (Huber on log residuals, positive
parameters in log space, exponents bounded), as the paper fits its laws.

X: (n, 2 + k) columns N, D, h_1..h_k (a DataFrame names the domains); y: (n,) or (n, m), one
law per output. :meth:`JointLaw.at` gives the law at fixed (N, D) as a mixture predictor for
:func:`mixkit.optimize.optimize_mixture`.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .base import ParametricLaw, as_2d, check_simplex
from .fitting import FitWarning, Param
from .scaling import ChinchillaLaw

FORMS = ("additive", "joint")
_EXPONENT_BOUNDS = (0.0, 5.0)


def _powers(h: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h^g, h^g log h) with 0 at h = 0 (the limit for g > 0), shapes (n, k)."""
    pos = h > 0
    safe = np.where(pos, h, 1.0)
    hg = np.where(pos, safe ** g, 0.0)
    return hg, np.where(pos, hg * np.log(safe), 0.0)


class JointLaw(ParametricLaw):
    """``L(N, D, h)`` of Shukor et al. 2025, additive or joint form (see the module docstring).

    Parameters: E, A, B (log space), alpha, beta, C_<j> (log space), gamma_<j> for the additive
    form; the joint form replaces A, B with CA_<j>, gammaA, CB_<j>, gammaB. Exponents lie in
    [0, 5]. ``form``: "additive" or "joint"; other hyperparameters as :class:`ParametricLaw`.

    N and D enter as N / N_ref_ and D / D_ref_, the geometric means of the fitted sizes and
    tokens (fitted attributes): A and B (A_h, B_h) are the size and data terms at those reference
    scales. The law is the same; the fit is far better conditioned than with raw N ~ 1e8
    (log A and alpha would move together along ln N ~ 18).
    """


    _input_rule = "model sizes N and tokens D must be positive and h must be a mixture"

    def __init__(self, form: str = "additive", n_starts: int = 16, huber_delta: float = 1e-3, bootstrap: int = 0,
                 random_state=None, bounds=None, max_iter: int | None = None):
        self.form = form
        super().__init__(n_starts=n_starts, huber_delta=huber_delta, bootstrap=bootstrap,
                         random_state=random_state, bounds=bounds, max_iter=max_iter)

    def fit(self, X, y):
        """Fit on X (n, 2 + k) columns N, D, h and losses y; returns self."""
        arr = as_2d(X)
        with np.errstate(all="ignore"):
            refs = np.exp(np.mean(np.log(arr[:, :2]), axis=0)) if arr.ndim == 2 and arr.shape[1] >= 2 else [1.0, 1.0]
        self.N_ref_, self.D_ref_ = (float(r) if np.isfinite(r) and r > 0 else 1.0 for r in refs)
        return super().fit(X, y)

    # -- inputs ----------------------------------------------------------------------------------
    def _check_inputs(self, X):
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {self.form!r}")
        arr = super()._check_inputs(X)
        if arr.shape[1] < 3:
            raise ValueError(f"JointLaw takes X with columns N, D, h_1..h_k (k >= 1), got {arr.shape[1]} column(s)")
        if np.any(arr[:, :2] <= 0):
            raise ValueError("JointLaw: model sizes N and tokens D (the first two columns of X) must be positive")
        check_simplex(arr[:, 2:], "JointLaw (columns h of X)")
        return arr

    def _hull_columns(self, X):
        return tuple(range(2, X.shape[1]))

    def _log_columns(self, X):
        return (True, True) + (False,) * (X.shape[1] - 2)  # N and D are scales, h is not

    def _domain_names(self, k: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        return [str(n) for n in names[2:]] if names is not None and len(names) == k + 2 else [str(j) for j in range(k)]

    # -- parameters ------------------------------------------------------------------------------
    def _param_specs(self, X, y):
        k = X.shape[1] - 2
        names = self._domain_names(k)
        ymin = float(np.min(y))
        expo = _EXPONENT_BOUNDS
        specs = [Param("E", (0.5 * ymin, 0.8 * ymin), log=True)]
        if self.form == "additive":
            specs += [Param("A", (0.1 * ymin,), log=True), Param("alpha", (0.2, 0.4), bounds=expo),
                      Param("B", (0.1 * ymin,), log=True), Param("beta", (0.2, 0.4), bounds=expo)]
        else:
            specs += [Param("alpha", (0.2, 0.4), bounds=expo), Param("beta", (0.2, 0.4), bounds=expo)]
        specs += [Param(f"C_{n}", (10.0 / ymin,), log=True) for n in names]
        specs += [Param(f"gamma_{n}", (0.5,), bounds=expo) for n in names]
        if self.form == "joint":
            specs += [Param(f"CA_{n}", (0.1 * ymin,), log=True) for n in names] + [Param("gammaA", (1.0,), bounds=expo)]
            specs += [Param(f"CB_{n}", (0.1 * ymin,), log=True) for n in names] + [Param("gammaB", (1.0,), bounds=expo)]
        return specs

    def _starts(self, X, y):
        # A Chinchilla fit of (N, D) alone sets the scale terms; the mixture term starts small.
        chin = ChinchillaLaw(n_starts=4, random_state=0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                theta = chin._fit_one(X[:, :2], y, np.random.default_rng(0), "JointLaw start")[0]
        except ValueError:
            return []
        E, A, B, a, b = theta
        A, B = A * self.N_ref_ ** (-a), B * self.D_ref_ ** (-b)  # at the reference scales
        k, ymin = X.shape[1] - 2, float(np.min(y))
        out = []
        for share in (0.02, 0.1):
            C = np.full(k, 1.0 / (share * ymin))
            E0 = max(E - share * ymin, 0.05 * ymin)
            gam = np.full(k, 0.5)
            if self.form == "additive":
                out.append(np.concatenate([[E0, A, a, B, b], C, gam]))
            else:
                out.append(np.concatenate([[E0, a, b], C, gam, np.full(k, A), [1.0], np.full(k, B), [1.0]]))
        return out

    def _split(self, theta, k):
        """(E, scale parameters, C, gamma) of a parameter vector."""
        if self.form == "additive":
            return theta[0], theta[1:5], theta[5:5 + k], theta[5 + k:5 + 2 * k]
        return theta[0], theta[1:3], theta[3:3 + k], theta[3 + k:3 + 2 * k]

    # -- the law ---------------------------------------------------------------------------------
    def _terms(self, theta, X):
        """(E, size term, data term, mixture term M, and the pieces the Jacobian needs)."""
        k = X.shape[1] - 2
        N, D, h = X[:, 0] / self.N_ref_, X[:, 1] / self.D_ref_, X[:, 2:]
        E, scale, C, g = self._split(theta, k)
        hg, hglog = _powers(h, g)
        P = hg @ C
        if self.form == "additive":
            A, alpha, B, beta = scale
            SA = SB = None
            Ah, Bh = np.full(len(X), A), np.full(len(X), B)
        else:
            alpha, beta = scale
            CA, gA = theta[3 + 2 * k:3 + 3 * k], theta[3 + 3 * k]
            CB, gB = theta[4 + 3 * k:4 + 4 * k], theta[4 + 4 * k]
            SA, SB = h @ CA, h @ CB
            Ah, Bh = SA ** gA, SB ** gB
        nN, nD = N ** (-alpha), D ** (-beta)
        return {"E": E, "size": Ah * nN, "data": Bh * nD, "mix": 1.0 / P, "P": P, "hg": hg, "hglog": hglog,
                "C": C, "nN": nN, "nD": nD, "Ah": Ah, "Bh": Bh, "SA": SA, "SB": SB, "logN": np.log(N),
                "logD": np.log(D), "h": h}

    def _log_predict(self, theta, X):
        t = self._terms(theta, X)
        return np.log(t["E"] + t["size"] + t["data"] + t["mix"])

    def _log_jac(self, theta, X):
        t = self._terms(theta, X)
        pred = t["E"] + t["size"] + t["data"] + t["mix"]
        dP = -1.0 / t["P"] ** 2  # d mix / d P
        mix_cols = [dP[:, None] * t["hg"], dP[:, None] * t["hglog"] * t["C"][None, :]]
        size_a = -t["size"] * t["logN"]
        data_b = -t["data"] * t["logD"]
        if self.form == "additive":
            cols = [np.ones(len(X))[:, None], t["nN"][:, None], size_a[:, None], t["nD"][:, None], data_b[:, None]]
            J = np.hstack(cols + mix_cols)
        else:
            k = X.shape[1] - 2
            gA, gB = theta[3 + 3 * k], theta[4 + 4 * k]
            dCA = (gA * t["SA"] ** (gA - 1) * t["nN"])[:, None] * t["h"]
            dCB = (gB * t["SB"] ** (gB - 1) * t["nD"])[:, None] * t["h"]
            dgA = (t["size"] * np.log(t["SA"]))[:, None]
            dgB = (t["data"] * np.log(t["SB"]))[:, None]
            J = np.hstack([np.ones(len(X))[:, None], size_a[:, None], data_b[:, None]] + mix_cols
                          + [dCA, dgA, dCB, dgB])
        return J / pred[:, None]

    def _probe_X(self, X):
        # Asked about larger scales and other mixtures: 10x the largest N and D at each domain alone.
        k = X.shape[1] - 2
        big = np.tile(10.0 * X[:, :2].max(axis=0), (k, 1))
        return np.vstack([X, np.hstack([big, np.eye(k)])])

    # -- use -------------------------------------------------------------------------------------
    def at(self, N: float, D: float) -> "JointLawSlice":
        """The fitted law at model size N and tokens D as a predictor of mixtures (``.predict(h)``
        with h (n, k)), e.g. ``optimize_mixture(law.at(N, D))`` for the best mixture at (N, D)."""
        check_is_fitted(self, "result_")
        if not (float(N) > 0 and float(D) > 0):
            raise ValueError(f"JointLaw.at: N and D must be positive, got N={N!r}, D={D!r}")
        return JointLawSlice(self, float(N), float(D))


class JointLawSlice:
    """A fitted :class:`JointLaw` at fixed (N, D): ``predict(h)`` over mixtures h (n, k). Carries
    ``feature_names_in_`` (the training domains) so optimize_mixture names its answer."""

    def __init__(self, law: JointLaw, N: float, D: float):
        self.law, self.N, self.D = law, N, D
        k = law.n_features_in_ - 2
        self.feature_names_in_ = np.asarray(law._domain_names(k), dtype=object)
        self.n_features_in_ = k

    def _X(self, h) -> np.ndarray:
        h = np.atleast_2d(np.asarray(h, dtype=float))
        return np.hstack([np.full((len(h), 1), self.N), np.full((len(h), 1), self.D), h])

    def predict(self, h) -> np.ndarray:
        return self.law._predict_with(self.law.thetas_, self.law._check_inputs(self._X(h)))


def joint_inputs(table, target="mean", size_column: str = "auto", tokens: str = "auto"):
    """(X, y) for :class:`JointLaw` from a run table: one row per (run, step) with columns N, D and
    the training-domain weights, and its target loss (:func:`mixkit.table.target_loss`: "mean",
    one validation domain, or {domain: weight}). Index: (run_id, step).

    N: ``non_embedding_params`` when every run has it (size_column "auto"), else ``model_size``.
    D: the ``tokens`` column when every row has it ("auto"), else the step (a batch size shared by
    all runs only rescales B); pass tokens="step" or "tokens" to choose. Points missing a
    validation domain of the target are dropped.
    """
    import pandas as pd

    from mixkit.table import NON_EMBEDDING_COLUMN, mixture_weights, target_loss, validate_table

    # Step-0 rows (mixkit records the untrained model's losses) have D = 0, outside the law's domain.
    table = validate_table(table)
    table = table[table["step"] > 0]
    if size_column == "auto":
        ne = NON_EMBEDDING_COLUMN in table.columns and table[NON_EMBEDDING_COLUMN].notna().all()
        size_column = NON_EMBEDDING_COLUMN if ne else "model_size"
    if tokens == "auto":
        tokens = "tokens" if table["tokens"].notna().all() else "step"
    if tokens not in ("tokens", "step"):
        raise ValueError(f"tokens must be 'auto', 'tokens' or 'step', got {tokens!r}")
    L = table.pivot_table(index=["run_id", "step"], columns="domain", values="loss")
    names = list(target) if isinstance(target, dict) else [target] if target in L.columns else list(L.columns)
    L = L.dropna(subset=names)
    y = target_loss(L[names] if target == "mean" else L, target)
    runs = L.index.get_level_values("run_id")
    first = table.groupby("run_id")[[size_column, "tokens"]].first()
    scale = table.set_index(["run_id", "step"])["tokens"].groupby(level=[0, 1]).first()
    D = scale.loc[L.index].to_numpy(float) if tokens == "tokens" else L.index.get_level_values("step").to_numpy(float)
    X = pd.DataFrame({"N": first.loc[runs, size_column].to_numpy(float), "D": D}, index=L.index)
    W = mixture_weights(table)
    X = X.join(W.loc[runs].set_axis(L.index))
    return X, y.to_numpy(float)
