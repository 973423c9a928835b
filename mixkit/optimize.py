"""Choose a mixture with a fitted law: minimise its predicted loss on the simplex.

:func:`optimize_mixture` with ``method="exact"`` minimises ``f(w) + kl * KL(w || prior)`` on the
simplex within per-domain bounds and repetition caps (:func:`repetition_caps`). For the log-linear
and explicit mixing laws the objective is a sum of exponentials of linear functions of w, so the
problem is convex and solved from one start with exact gradients (:class:`ExpSum`; the linear law,
:class:`Affine`, likewise); other smooth predictors get multi-start SLSQP with batched
finite-difference gradients (one predictor call per gradient). ``method="topk"`` is RegMix's simulation: sample many Dirichlet mixtures around a prior,
predict them all and average the ``top_k`` best (the right tool for piecewise-constant predictors
such as LightGBM, whose gradients are zero almost everywhere).

Without the KL term a log-linear law's optimum is a vertex of the feasible set (all weight on the
domain with the most negative effect): far outside every fitted mixture, where the law is
extrapolating. The KL term (Olmix's regulariser) keeps the answer near the prior; its strength is
chosen by the user or by :func:`select_kl` (2-fold cross-fitting, rule stated there). Every
proposal can say how far it lies from the fitted mixtures (:func:`support_report`), and
:func:`bootstrap_optimum` turns bootstrap refits of the law into intervals on the weights and on
the predicted target.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize as sopt
from threadpoolctl import threadpool_limits

from mixkit.laws.domain import hull_distance
from mixkit.mixture import Mixture, sample_dirichlet, tempered_prior


__all__ = ["Affine", "ExpSum", "OptimumResult", "Support", "bootstrap_optimum", "optimize_mixture", "project_to_simplex",
           "repetition_caps", "select_kl", "support_report"]

# A weight this small counts as zero in KL(w || p) (w log w -> 0): the solver's lower bound for
# domains that may be used, so that log w stays finite.
_W_FLOOR = 1e-12


@dataclass(frozen=True)
class Support:
    """How far a proposal lies from the mixtures the law was fitted on.

    ``max_seen`` / ``min_seen``: per-domain largest / smallest weight among the fitted mixtures;
    ``above`` / ``below``: {domain: by how much the proposal leaves that range};
    ``hull_distance``: Euclidean distance from the proposal to the convex hull of the fitted
    mixtures (0 inside); ``extrapolates``: a domain leaves its seen range by more than ``tol`` or the
    hull distance exceeds ``hull_tol``.
    """

    max_seen: dict[str, float]
    min_seen: dict[str, float]
    above: dict[str, float]
    below: dict[str, float]
    hull_distance: float
    extrapolates: bool
    tol: float
    hull_tol: float

    def describe(self) -> str:
        parts = [f"{d} {v:+.3f} above the largest share seen" for d, v in self.above.items()]
        parts += [f"{d} {v:.3f} below the smallest share seen" for d, v in self.below.items()]
        parts.append(f"distance to the hull of the fitted mixtures {self.hull_distance:.3f}")
        return "; ".join(parts)


@dataclass(frozen=True)
class OptimumResult:
    """The recommended mixture and what the law predicts for it.

    ``weights`` maps domain -> share (sums to 1); ``predicted_loss`` is the objective the law
    predicts there (the weighted combination of its outputs when an objective was given), without
    the KL term; ``method`` is "exact" or "topk"; ``n_evaluations`` counts predictor calls on
    mixtures; ``candidates`` (topk only) are the top_k mixtures that were averaged. ``kl`` is the
    penalty strength used and ``prior`` the prior it pulled towards. ``support`` (when the fitted
    mixtures were given) says how far the proposal extrapolates; ``weight_interval`` (domain x
    lower/upper) and ``loss_interval`` come from :func:`bootstrap_optimum`. ``warnings`` lists what
    the user should know (extrapolation, a solver that did not converge).
    """

    weights: dict[str, float]
    predicted_loss: float
    method: str
    success: bool = True
    message: str = ""
    n_evaluations: int = 0
    candidates: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    kl: float = 0.0
    prior: dict[str, float] | None = field(default=None, repr=False, compare=False)
    support: Support | None = field(default=None, repr=False, compare=False)
    weight_interval: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    loss_interval: tuple[float, float] | None = None
    warnings: tuple[str, ...] = ()

    @property
    def series(self) -> pd.Series:
        return pd.Series(self.weights, name="weight", dtype=float)

    @property
    def domains(self) -> list[str]:
        return list(self.weights)

    def as_array(self) -> np.ndarray:
        return np.array(list(self.weights.values()), dtype=float)

    def mixture(self, name: str | None = None):
        """The weights as a :class:`mixkit.mixture.Mixture`."""
        return Mixture(self.weights, domains=self.domains, name=name or f"optimum-{self.method}")

    def table(self) -> pd.DataFrame:
        """One row per domain: weight, [lower, upper,] [max_seen, min_seen,] prior."""
        out = pd.DataFrame({"weight": self.series})
        if self.weight_interval is not None:
            out = out.join(self.weight_interval)
        if self.support is not None:
            out["min_seen"] = pd.Series(self.support.min_seen)
            out["max_seen"] = pd.Series(self.support.max_seen)
        if self.prior is not None:
            out["prior"] = pd.Series(self.prior)
        out.index.name = "domain"
        return out


# ----------------------------------------------------------------------------------------------
# predictor plumbing
# ----------------------------------------------------------------------------------------------


def _predictor_domains(predictor) -> list[str] | None:
    for attr in ("feature_names_in_", "domains_", "domains"):
        names = getattr(predictor, attr, None)
        if names is not None and not callable(names):
            return [str(n) for n in names]
    return None


def _objective_weights(predictor, objective) -> np.ndarray | None:
    """The objective as weights over the predictor's outputs (None: single output or their mean)."""
    if objective is None:
        return None
    if isinstance(objective, Mapping):
        names = getattr(predictor, "output_names_", None)
        if names is None:
            raise ValueError(
                "objective given as {output: weight} but the predictor has no output_names_; "
                "pass a weight vector in output order instead"
            )
        names = [str(n) for n in names]
        unknown = [k for k in objective if str(k) not in names]
        if unknown:
            raise ValueError(f"objective names unknown output(s) {unknown}; the predictor's outputs are {names}")
        s = np.array([float(objective.get(n, 0.0)) for n in names])
    else:
        s = np.asarray(objective, dtype=float).ravel()
    if not np.all(np.isfinite(s)) or np.any(s < 0) or s.sum() <= 0:
        raise ValueError("objective weights must be finite, non-negative and not all zero")
    return s


def _combine(out: np.ndarray, s: np.ndarray | None) -> np.ndarray:
    if s is None:
        return out if out.ndim == 1 else out.mean(axis=1)
    if out.ndim == 1:
        if len(s) != 1:
            raise ValueError(f"objective has {len(s)} weights but the predictor has a single output")
        return out * s[0]
    if out.shape[1] != len(s):
        raise ValueError(f"objective has {len(s)} weights but the predictor has {out.shape[1]} outputs")
    return out @ s


def _make_objective(predictor, domains: list[str], objective) -> Callable[[np.ndarray], np.ndarray]:
    """f(W (n, d)) -> (n,) predicted objective, whatever the predictor's output shape."""
    predict = predictor.predict if hasattr(predictor, "predict") else predictor
    if not callable(predict):
        raise ValueError("predictor must have a .predict method or be a callable f(W) -> losses")
    as_frame = getattr(predictor, "feature_names_in_", None) is not None
    s = _objective_weights(predictor, objective)

    def f(W: np.ndarray) -> np.ndarray:
        X = pd.DataFrame(W, columns=domains) if as_frame else W
        out = np.asarray(predict(X), dtype=float)
        if out.ndim == 0:
            out = out.reshape(1)
        if out.shape[0] != W.shape[0]:
            raise ValueError(f"predictor returned {out.shape[0]} predictions for {W.shape[0]} mixtures")
        return _combine(out, s)
    return f


@dataclass(frozen=True)
class ExpSum:
    """``f(w) = const + sum_i scale_i exp(T_i . w)``: the log-linear law (scale 1, const exp(c)) and
    the explicit mixing law (scale k, const c), summed over outputs with the objective's weights.
    Convex in w whenever every scale is >= 0, with the exact gradient ``T' (scale * exp(T w))``."""

    const: float
    scale: np.ndarray  # (m,)
    T: np.ndarray  # (m, d)

    def __call__(self, W: np.ndarray) -> np.ndarray:
        return self.const + np.exp(np.clip(np.atleast_2d(W) @ self.T.T, -700, 700)) @ self.scale

    def grad(self, w: np.ndarray) -> np.ndarray:
        return self.T.T @ (self.scale * np.exp(np.clip(self.T @ w, -700, 700)))


@dataclass(frozen=True)
class Affine:
    """``f(w) = const + g . w``: the linear regression law (RegMix's baseline), its outputs combined
    with the objective's weights. Linear, so convex in either direction."""

    const: float
    g: np.ndarray  # (d,)

    def __call__(self, W: np.ndarray) -> np.ndarray:
        return self.const + np.atleast_2d(W) @ self.g

    def grad(self, w: np.ndarray) -> np.ndarray:
        return self.g


def _affine_of(predictor, domains: list[str], objective) -> Affine | None:
    from mixkit.laws.regression import LinearRegressionLaw

    if not isinstance(predictor, LinearRegressionLaw) or not hasattr(predictor, "coef_"):
        return None
    names = getattr(predictor, "feature_names_in_", None)
    if (names is not None and [str(n) for n in names] != list(domains)) or predictor.n_features_in_ != len(domains):
        return None
    coef = np.atleast_2d(np.asarray(predictor.coef_, dtype=float))
    icpt = np.atleast_1d(np.asarray(predictor.intercept_, dtype=float))
    s = _objective_weights(predictor, objective)
    s = np.full(len(coef), 1.0 / len(coef)) if s is None else s
    if len(s) != len(coef):
        raise ValueError(f"objective has {len(s)} weights but the predictor has {len(coef)} outputs")
    return Affine(float(icpt @ s), s @ coef)


def _smooth_form(predictor, domains: list[str], objective, sign: float):
    """(f, exact gradient, convex) of the sign-scaled objective for the laws with a closed form
    (ExpSum, Affine); None for any other predictor."""
    form = predictor if isinstance(predictor, (ExpSum, Affine)) else None
    if form is None:
        sums = exp_sums(predictor, domains, objective)
        form = sums[0] if sums is not None else _affine_of(predictor, domains, objective)
    if form is None:
        return None
    if isinstance(form, Affine):
        form = Affine(sign * form.const, sign * form.g)
        return form, form.grad, True
    form = ExpSum(sign * form.const, sign * form.scale, form.T)
    return form, form.grad, bool(np.all(form.scale >= 0))


def _exp_sum_of(kind: str, thetas: Sequence[np.ndarray], s: np.ndarray) -> ExpSum:
    th = [np.asarray(t, dtype=float) for t in thetas]
    if kind == "loglinear":
        return ExpSum(float(np.sum(s * np.exp([t[0] for t in th]))), s.copy(), np.array([t[1:] for t in th]))
    return ExpSum(float(np.sum(s * np.array([t[0] for t in th]))), s * np.array([t[1] for t in th]),
                  np.array([t[2:] for t in th]))


def _law_kind(predictor) -> str | None:
    from mixkit.laws.mixing import MixingLaw
    from mixkit.laws.regression import LogLinearLaw

    if isinstance(predictor, LogLinearLaw) and hasattr(predictor, "thetas_"):
        return "loglinear"
    if isinstance(predictor, MixingLaw) and hasattr(predictor, "thetas_"):
        return "mixing"
    return None


def exp_sums(predictor, domains: list[str], objective=None, bootstrap: bool = False) -> list[ExpSum] | None:
    """The law as :class:`ExpSum` (one, or one per bootstrap refit), in `domains` order; None when
    the predictor is not a fitted log-linear or explicit mixing law over exactly these domains."""
    kind = _law_kind(predictor)
    names = getattr(predictor, "feature_names_in_", None)
    if kind is None or (names is not None and [str(n) for n in names] != list(domains)):
        return None
    if names is None and predictor.n_features_in_ != len(domains):
        return None
    s = _objective_weights(predictor, objective)
    m = predictor.n_outputs_
    s = np.full(m, 1.0 / m) if s is None else s
    if len(s) != m:
        raise ValueError(f"objective has {len(s)} weights but the predictor has {m} outputs")
    if not bootstrap:
        return [_exp_sum_of(kind, predictor.thetas_, s)]
    boots = [r.bootstrap_params for r in predictor.results_.values()]
    if any(b is None or len(b) == 0 for b in boots):
        return None
    n = min(len(b) for b in boots)
    return [_exp_sum_of(kind, [b[i] for b in boots], s) for i in range(n)]


# ----------------------------------------------------------------------------------------------
# constraints and priors
# ----------------------------------------------------------------------------------------------


def repetition_caps(available_tokens: Mapping[str, float], target_tokens: float,
                    repetition_factor: float = 4.0) -> dict[str, float]:
    """Per-domain caps ``w_j <= repetition_factor * available_tokens_j / target_tokens`` (at most 1):
    a domain cannot take more of the target run than its tokens repeated `repetition_factor` times."""
    if not (np.isfinite(target_tokens) and target_tokens > 0):
        raise ValueError(f"target_tokens must be a positive number, got {target_tokens!r}")
    if not (np.isfinite(repetition_factor) and repetition_factor > 0):
        raise ValueError(f"repetition_factor must be a positive number, got {repetition_factor!r}")
    caps = {}
    for d, n in available_tokens.items():
        if not (np.isfinite(n) and n >= 0):
            raise ValueError(f"available tokens of domain {d!r} must be a non-negative number, got {n!r}")
        caps[str(d)] = float(min(1.0, repetition_factor * n / target_tokens))
    total = sum(caps.values())
    if total < 1 - 1e-9:
        raise ValueError(f"repetition caps (factor {repetition_factor:g} x available tokens / {target_tokens:g} target "
                         f"tokens) sum to {total:.4f} < 1: the domains hold too few tokens for the target run "
                         "(raise the repetition factor or lower the target tokens)")
    return caps


def _box(domains: list[str], bounds, caps) -> tuple[np.ndarray, np.ndarray]:
    lo = np.zeros(len(domains))
    hi = np.ones(len(domains))
    for arg, name in ((bounds, "bounds"), (caps, "caps")):
        unknown = [k for k in (arg or {}) if k not in domains]
        if unknown:
            raise ValueError(f"{name} name unknown domain(s) {unknown}; domains are {domains}")
    for k, (a, b) in (bounds or {}).items():
        i = domains.index(k)
        a = 0.0 if a is None else a
        b = 1.0 if b is None else b
        if not (0.0 <= a <= b <= 1.0):
            raise ValueError(f"bounds for {k!r} must satisfy 0 <= lo <= hi <= 1, got ({a}, {b})")
        lo[i], hi[i] = a, b
    for k, cap in (caps or {}).items():
        i = domains.index(k)
        if not (0.0 <= cap):
            raise ValueError(f"cap for {k!r} must be >= 0, got {cap}")
        hi[i] = min(hi[i], float(cap))
    if np.any(lo > hi + 1e-12):
        bad = [d for d, a, b in zip(domains, lo, hi) if a > b + 1e-12]
        raise ValueError(f"lower bound above the cap for domain(s) {bad}")
    if lo.sum() > 1 + 1e-9:
        raise ValueError(f"lower bounds sum to {lo.sum():.4f} > 1: no mixture satisfies them")
    if hi.sum() < 1 - 1e-9:
        raise ValueError(f"upper bounds/caps sum to {hi.sum():.4f} < 1: no mixture satisfies them")
    return lo, hi


def project_to_simplex(v: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """Euclidean projection of each row of v onto {lo <= w <= hi, sum w = 1}.

    The projection is ``clip(v - tau, lo, hi)`` with the scalar tau that makes the row sum to one;
    tau is found by bisection (the sum is monotone in tau).
    """
    V = np.atleast_2d(np.asarray(v, dtype=float))
    d = V.shape[1]
    lo = np.zeros(d) if lo is None else np.asarray(lo, dtype=float)
    hi = np.ones(d) if hi is None else np.asarray(hi, dtype=float)
    if lo.sum() > 1 + 1e-9 or hi.sum() < 1 - 1e-9:
        raise ValueError("the bounds admit no mixture (lower bounds sum > 1 or upper bounds sum < 1)")
    a = (V - hi).min(axis=1) - 1.0  # sum >= 1 at tau = a
    b = (V - lo).max(axis=1) + 1.0  # sum <= 1 at tau = b
    for _ in range(100):
        mid = 0.5 * (a + b)
        s = np.clip(V - mid[:, None], lo, hi).sum(axis=1)
        a = np.where(s > 1, mid, a)
        b = np.where(s > 1, b, mid)
    # 100 halvings leave the sum within rounding of 1.
    W = np.clip(V - (0.5 * (a + b))[:, None], lo, hi)
    return W if np.ndim(v) == 2 else W[0]


def _resolve_domains(predictor, domains) -> list[str]:
    if domains is None:
        domains = _predictor_domains(predictor)
        if domains is None:
            n = getattr(predictor, "n_features_in_", None)
            if n is None:
                raise ValueError("pass domains=[...]: the predictor does not say which inputs it takes")
            domains = [f"x{j}" for j in range(int(n))]
    domains = [str(d) for d in domains]
    if len(set(domains)) != len(domains):
        raise ValueError(f"duplicate domain names in {domains}")
    if len(domains) < 2:
        raise ValueError("a mixture needs at least two domains")
    return domains


def _prior_array(prior, domains: list[str]) -> np.ndarray:
    """The prior as a positive vector summing to one in `domains` order (uniform when None)."""
    d = len(domains)
    if prior is None:
        p = np.full(d, 1.0 / d)
    elif isinstance(prior, Mapping):
        missing = [k for k in domains if k not in prior]
        if missing:
            raise ValueError(f"prior lacks domain(s) {missing}")
        p = np.array([float(prior[k]) for k in domains])
    else:
        p = np.asarray(prior, dtype=float)
    if p.shape != (d,) or np.any(p < 0) or not np.all(np.isfinite(p)) or p.sum() <= 0:
        raise ValueError(f"prior must be {d} non-negative finite numbers, not all zero")
    # Floored so that every domain can be drawn: the optimum may use a domain the prior lacks.
    return np.maximum(p / p.sum(), 1e-12)


def _sample(gen: np.random.Generator, prior: np.ndarray, n: int, temperature: float) -> np.ndarray:
    """RegMix's candidates: Dirichlet(s * prior**T / sum(prior**T)), s log-uniform in [0.1, 5]."""
    return sample_dirichlet(gen, tempered_prior(prior, temperature), n)


# ----------------------------------------------------------------------------------------------
# the solver
# ----------------------------------------------------------------------------------------------


@dataclass
class _Problem:
    """min f(w) + kl * KL(w || prior) on {lo <= w <= hi, sum w = 1}."""

    f: Callable[[np.ndarray], np.ndarray]  # (n, d) -> (n,)
    grad: Callable[[np.ndarray], np.ndarray] | None  # exact gradient of f at one w, or None
    lo: np.ndarray
    hi: np.ndarray
    prior: np.ndarray
    kl: float
    convex: bool
    n_eval: int = 0

    def kl_value(self, w: np.ndarray) -> float:
        w = np.maximum(w, 0.0)
        pos = w > 0
        return float(np.sum(w[pos] * np.log(w[pos] / self.prior[pos])))

    def value(self, w: np.ndarray) -> float:
        self.n_eval += 1
        v = float(self.f(w[None, :])[0])
        return v + self.kl * self.kl_value(w) if self.kl else v

    def gradient(self, w: np.ndarray) -> np.ndarray:
        if self.grad is not None:
            g = self.grad(w)
        else:
            g = self._fd_grad(w)
        if self.kl:
            g = g + self.kl * (np.log(np.maximum(w, _W_FLOOR) / self.prior) + 1.0)
        return g

    def _fd_grad(self, w: np.ndarray) -> np.ndarray:
        # Forward differences in one batched predictor call: d + 1 rows instead of d + 1 calls.
        # Backward where a forward step would leave [0, 1]: some laws refuse shares above 1.
        h = np.where(w + 1e-6 <= 1.0, 1e-6, -1e-6)
        W = np.vstack([w, w + np.diag(h)])
        self.n_eval += 1
        v = self.f(W)
        return (v[1:] - v[0]) / h


def _solver_box(lo: np.ndarray, hi: np.ndarray, kl: float) -> list[tuple[float, float]]:
    # With a KL term, domains that may be used stay strictly positive (log w must be finite).
    if not kl:
        return list(zip(lo, hi))
    return [(max(a, min(_W_FLOOR, b)), b) for a, b in zip(lo, hi)]


def _slsqp(prob: _Problem, w0: np.ndarray, box) -> tuple[np.ndarray, bool, str]:
    cons = [{"type": "eq", "fun": lambda w: np.sum(w) - 1.0, "jac": lambda w: np.ones_like(w)}]
    res = sopt.minimize(prob.value, w0, jac=prob.gradient, method="SLSQP", bounds=box, constraints=cons,
                        options={"maxiter": 1000, "ftol": 1e-15})
    lo_b = np.array([b[0] for b in box])
    hi_b = np.array([b[1] for b in box])
    return project_to_simplex(res.x, lo_b, hi_b), bool(res.success), str(res.message)


def _starts(prob: _Problem, gen, n_starts: int, temperature: float) -> list[np.ndarray]:
    d = len(prob.lo)
    lo_b = np.array([b[0] for b in _solver_box(prob.lo, prob.hi, prob.kl)])
    first = project_to_simplex(prob.prior if prob.kl else np.full(d, 1.0 / d), lo_b, prob.hi)
    if prob.convex:
        return [first]  # a convex problem has one optimum: one start finds it
    starts = [first] + ([project_to_simplex(np.full(d, 1.0 / d), lo_b, prob.hi)] if prob.kl else [])
    if n_starts > len(starts):
        starts += list(project_to_simplex(_sample(gen, prob.prior, n_starts - len(starts), temperature), lo_b, prob.hi))
    return starts[:max(1, n_starts)]


def _exact(prob: _Problem, gen, n_starts: int, temperature: float) -> tuple[np.ndarray, bool, str]:
    if n_starts < 1:
        raise ValueError(f"n_starts must be >= 1, got {n_starts}")
    box = _solver_box(prob.lo, prob.hi, prob.kl)
    starts = _starts(prob, gen, n_starts, temperature)
    # Starting values count too: a non-smooth predictor can leave SLSQP where it began.
    vals = [prob.value(w) for w in starts]
    i0 = int(np.argmin(vals))
    best_w, best_v, msg, ok = starts[i0], vals[i0], "best start (no SLSQP improvement)", False
    for w0 in starts:
        w, success, message = _slsqp(prob, w0, box)
        v = prob.value(w)
        if v < best_v - 1e-15:
            best_w, best_v, msg, ok = w, v, message, success
        elif success:
            ok = True
    return best_w, ok, msg


def optimize_mixture(
    predictor,
    domains: Sequence[str] | None = None,
    objective: Sequence[float] | Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
    caps: Mapping[str, float] | None = None,
    method: str = "exact",
    n_starts: int = 16,
    n_samples: int = 100_000,
    top_k: int = 128,
    rng: int | np.random.Generator | None = 0,
    prior: Mapping[str, float] | Sequence[float] | None = None,
    temperature: float = 0.5,
    batch_size: int = 20_000,
    kl: float = 0.0,
    fitted_mixtures: pd.DataFrame | np.ndarray | None = None,
    maximize: bool = False,
) -> OptimumResult:
    """Mixture that minimises a fitted law's predicted loss (+ ``kl * KL(w || prior)``), within
    bounds and repetition caps.

    Parameters
    ----------
    predictor : a fitted law (``.predict(W)``) or a callable ``f(W (n, d)) -> (n,) or (n, m)``.
    domains : names of the predictor's inputs, in order (default: its ``feature_names_in_``).
    objective : for multi-output laws, non-negative weights over the outputs (in output order, or
        {output name: weight}). Default: the single output, or the mean of several.
    bounds : {domain: (lo, hi)}. caps : {domain: max share}, e.g. :func:`repetition_caps`.
    method : "exact" (for smooth laws: convex solve for log-linear / mixing laws, multi-start SLSQP
        otherwise) or "topk" (RegMix simulation; for tree models and other non-smooth predictors).
    kl : strength lambda of the KL(w || prior) penalty (exact only; 0 = none). prior : the prior
        (default uniform), also the centre of topk's samples (``Dirichlet(prior^temperature * s)``
        with s log-uniform in [0.1, 5]).
    fitted_mixtures : the mixtures the law was fitted on; when given the result carries a
        :class:`Support` report and a warning when the proposal extrapolates.
    maximize : the target is better when higher (e.g. an accuracy): the law's prediction is
        maximised (the KL term is still a penalty); ``predicted_loss`` is then the predicted value.
    n_starts, n_samples, top_k, temperature, batch_size, rng : solver settings (see the module).

    Raises ValueError for infeasible constraints or unknown domain names.
    """
    domains = _resolve_domains(predictor, domains)
    lo, hi = _box(domains, bounds, caps)
    gen = np.random.default_rng(rng)
    p = _prior_array(prior, domains)
    if not (np.isfinite(kl) and kl >= 0):
        raise ValueError(f"kl must be a finite number >= 0, got {kl!r}")
    sign = -1.0 if maximize else 1.0
    if method == "exact":
        res = _exact_result(predictor, domains, objective, lo, hi, p, kl, gen, n_starts, temperature, sign)
    elif method == "topk":
        if kl:
            raise ValueError("kl applies to method='exact'; topk stays near the prior by sampling around it")
        f = _make_objective(predictor, domains, objective)
        res = _topk(lambda W: sign * f(W), domains, lo, hi, p, gen, n_samples, top_k, temperature, batch_size)
        res = replace(res, predicted_loss=sign * res.predicted_loss)
    else:
        raise ValueError(f"method must be 'exact' or 'topk', got {method!r}")
    res = replace(res, prior=dict(zip(domains, map(float, p))))
    return _with_support(res, fitted_mixtures) if fitted_mixtures is not None else res


def _exact_result(predictor, domains, objective, lo, hi, p, kl, gen, n_starts, temperature, sign) -> OptimumResult:
    form = _smooth_form(predictor, domains, objective, sign)
    if form is not None:
        prob = _Problem(form[0], form[1], lo, hi, p, kl, convex=form[2])
    else:
        f = _make_objective(predictor, domains, objective)
        prob = _Problem(lambda W: sign * f(W), None, lo, hi, p, kl, convex=False)
    # One BLAS thread: SLSQP's small dense solves run 25x slower under thread contention on a
    # busy 2-core machine (0.23 s against 6.4 s for 64 domains).
    with threadpool_limits(limits=1, user_api="blas"):
        w, ok, msg = _exact(prob, gen, n_starts, temperature)
    value = sign * float(prob.f(w[None, :])[0])
    warn = () if ok else (f"the exact solver did not report convergence ({msg})",)
    return OptimumResult({k: float(v) for k, v in zip(domains, w)}, value, "exact", success=ok, message=msg,
                         n_evaluations=prob.n_eval, kl=float(kl), warnings=warn)


def _topk(f, domains, lo, hi, prior, gen, n_samples, top_k, temperature, batch_size) -> OptimumResult:
    if n_samples < 1 or top_k < 1:
        raise ValueError(f"n_samples and top_k must be >= 1, got {n_samples}, {top_k}")
    top_k = min(top_k, n_samples)
    W = _sample(gen, prior, n_samples, temperature)
    ok = np.all((W >= lo - 1e-12) & (W <= hi + 1e-12), axis=1)
    if ok.sum() < top_k:
        warnings.warn(
            f"only {int(ok.sum())} of {n_samples} sampled mixtures satisfy the bounds/caps; "
            "projecting rejected samples onto the constraints to reach top_k",
            stacklevel=3,
        )
        extra = project_to_simplex(W[~ok][: top_k - int(ok.sum())], lo, hi)
        W = np.vstack([W[ok], extra])
    else:
        W = W[ok]
    preds = np.concatenate([f(W[i:i + batch_size]) for i in range(0, len(W), batch_size)])
    order = np.argsort(preds, kind="stable")[:top_k]
    avg = project_to_simplex(W[order].mean(axis=0), lo, hi)
    value = float(f(avg[None, :])[0])
    cand = pd.DataFrame(W[order], columns=domains)
    cand["predicted"] = preds[order]
    weights = {k: float(v) for k, v in zip(domains, avg)}
    return OptimumResult(weights, value, "topk", success=True,
                         message=f"mean of the {top_k} best of {len(W)} sampled mixtures",
                         n_evaluations=len(W) + 1, candidates=cand)


# ----------------------------------------------------------------------------------------------
# where the proposal lies
# ----------------------------------------------------------------------------------------------


def _mixture_array(fitted_mixtures, domains: list[str]) -> np.ndarray:
    if isinstance(fitted_mixtures, pd.DataFrame):
        missing = [d for d in domains if d not in fitted_mixtures.columns]
        if missing:
            raise ValueError(f"fitted_mixtures lack domain column(s) {missing}")
        return fitted_mixtures[domains].to_numpy(dtype=float)
    X = np.asarray(fitted_mixtures, dtype=float)
    if X.ndim != 2 or X.shape[1] != len(domains) or not len(X):
        raise ValueError(f"fitted_mixtures must be (n, {len(domains)}), got shape {X.shape}")
    return X


def support_report(weights: Mapping[str, float], fitted_mixtures, tol: float = 0.01,
                   hull_tol: float = 0.05) -> Support:
    """How far `weights` lies from the fitted mixtures (see :class:`Support`)."""
    domains = list(weights)
    X = _mixture_array(fitted_mixtures, domains)
    w = np.array([weights[d] for d in domains], dtype=float)
    mx, mn = X.max(axis=0), X.min(axis=0)
    # Departures under 1e-4 are rounding, not extrapolation.
    above = {d: float(w[j] - mx[j]) for j, d in enumerate(domains) if w[j] > mx[j] + 1e-4}
    below = {d: float(mn[j] - w[j]) for j, d in enumerate(domains) if w[j] < mn[j] - 1e-4}
    dist = float(hull_distance(w, X)[0])
    out = max([*above.values(), *below.values(), 0.0]) > tol or dist > hull_tol
    return Support(dict(zip(domains, map(float, mx))), dict(zip(domains, map(float, mn))), above, below, dist,
                   bool(out), tol, hull_tol)


def _with_support(res: OptimumResult, fitted_mixtures) -> OptimumResult:
    sup = support_report(res.weights, fitted_mixtures)
    warn = list(res.warnings)
    if sup.extrapolates:
        text = f"the proposal extrapolates beyond the fitted mixtures: {sup.describe()}"
        warnings.warn(text, stacklevel=3)
        warn.append(text)
    return replace(res, support=sup, warnings=tuple(warn))


# ----------------------------------------------------------------------------------------------
# intervals and the choice of lambda
# ----------------------------------------------------------------------------------------------


def _boot_predictors(law, X, y, n_boot: int, gen) -> list:
    """Bootstrap versions of `law`: its own bootstrap parameters (parametric laws fitted with
    bootstrap > 0), else clones refitted on case resamples of (X, y)."""
    from sklearn.base import clone

    if X is None or y is None:
        raise ValueError("bootstrap intervals need the fitted data (X, y) or a law fitted with bootstrap > 0")
    n = len(X)
    out = []
    for _ in range(n_boot):
        idx = gen.integers(0, n, n)
        Xb = X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]
        yb = y.iloc[idx] if hasattr(y, "iloc") else np.asarray(y)[idx]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one resample's warning is not the fit's
            out.append(clone(law).fit(Xb, yb))
    return out


def bootstrap_optimum(result: OptimumResult, law, X=None, y=None, n_boot: int = 50, alpha: float = 0.1,
                      rng=0, **options) -> OptimumResult:
    """`result` with intervals: per-domain (1 - alpha) weight intervals from the optima of
    bootstrap versions of `law`, and the interval of the target those versions predict at the
    proposed mixture. `options` are the :func:`optimize_mixture` arguments that produced `result`
    (objective, bounds, caps, kl, method, ...). A log-linear or mixing law fitted with bootstrap > 0
    uses its own bootstrap parameters (no refit); other laws are refitted ``n_boot`` times on case
    resamples of (X, y)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    domains = result.domains
    options = {k: v for k, v in options.items() if k not in ("fitted_mixtures", "domains")}
    options.setdefault("kl", result.kl)
    options.setdefault("prior", result.prior)
    w_star = result.as_array()[None, :]
    sums = exp_sums(law, domains, options.get("objective"), bootstrap=True)
    gen = np.random.default_rng(rng)
    preds = sums if sums is not None else _boot_predictors(law, X, y, n_boot, gen)
    W, L = [], []
    for pb in preds:
        opts = {k: v for k, v in options.items() if not (isinstance(pb, ExpSum) and k == "objective")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = optimize_mixture(pb, domains=domains, rng=gen, **opts)
        W.append(r.as_array())
        f = pb if isinstance(pb, ExpSum) else _make_objective(pb, domains, options.get("objective"))
        L.append(float(f(w_star)[0]))
    q = [alpha / 2, 1 - alpha / 2]
    lo_w, hi_w = np.quantile(np.array(W), q, axis=0)
    interval = pd.DataFrame({"lower": lo_w, "upper": hi_w}, index=pd.Index(domains, name="domain"))
    lo_l, hi_l = np.quantile(np.array(L), q)
    return replace(result, weight_interval=interval, loss_interval=(float(lo_l), float(hi_l)))


DEFAULT_KL_GRID = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
KL_RULE = ("split the runs at random into two halves A and B; fit the law on A, propose with each lambda, and "
           "score the proposal by what the law fitted on B (runs the proposer never saw) predicts there; the same "
           "with A and B swapped; the lambda with the best mean held-out prediction wins, and a larger lambda within "
           "a relative 1e-3 of it wins instead (closer to the prior at no measurable cost)")


def select_kl(law, X: pd.DataFrame, y, grid: Sequence[float] = DEFAULT_KL_GRID, rng=0, n_repeats: int = 1,
              tie: float = 1e-3, **options) -> tuple[float, pd.DataFrame]:
    """Choose lambda by held-out validation (2-fold cross-fitting).

    Rule: split the runs at random into two halves A and B; fit the law on A, propose with each
    lambda, and score the proposal by what the law fitted on B (runs the proposer never saw)
    predicts there; the same with A and B swapped; repeat `n_repeats` times. The chosen lambda has
    the best (lowest; highest with ``maximize=True``) mean held-out prediction; any larger lambda whose mean is within `tie` (relative) of
    that minimum wins instead, since it stays closer to the prior at no measurable cost.
    Returns (lambda, table of lambda x mean held-out predicted target).
    """
    from sklearn.base import clone

    grid = sorted(float(g) for g in grid)
    if not grid or any(g < 0 or not np.isfinite(g) for g in grid):
        raise ValueError(f"the lambda grid must hold finite numbers >= 0, got {grid}")
    gen = np.random.default_rng(rng)
    n = len(X)
    scores = np.zeros(len(grid))
    for _ in range(n_repeats):
        perm = gen.permutation(n)
        halves = (perm[: n // 2], perm[n // 2:])
        fitted = [_fit_quiet(clone(law), X.iloc[h], _rows(y, h)) for h in halves]
        for a, b in ((0, 1), (1, 0)):
            judge = _make_objective(fitted[b], list(X.columns), options.get("objective"))
            for i, lam in enumerate(grid):
                r = optimize_mixture(fitted[a], domains=list(X.columns), kl=lam, rng=gen, **options)
                scores[i] += float(judge(r.as_array()[None, :])[0])
    scores /= 2 * n_repeats
    sign = -1.0 if options.get("maximize") else 1.0
    best = float((sign * scores).min())
    ok = [i for i in range(len(grid)) if sign * scores[i] <= best + tie * abs(best)]
    table = pd.DataFrame({"kl": grid, "heldout_predicted": scores})
    return grid[max(ok)], table


def _rows(y, idx):
    return y.iloc[idx] if hasattr(y, "iloc") else np.asarray(y)[idx]


def _fit_quiet(law, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return law.fit(X, y)
