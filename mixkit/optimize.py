"""Choose a mixture with a fitted law: minimise its predicted loss on the simplex.

:func:`optimize_mixture` with ``method="exact"`` runs multi-start SLSQP on the simplex with
per-domain bounds and repetition caps (for smooth laws: mixing laws, log-linear, BiMix);
``method="topk"`` is RegMix's simulation: sample many Dirichlet mixtures around a prior (the
design's sampler, :func:`mixkit.mixture.sample_dirichlet`), predict them all, and average the
``top_k`` best (the right tool for piecewise-constant predictors such as LightGBM, whose gradients
are zero almost everywhere).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize as sopt

from mixkit.mixture import Mixture, sample_dirichlet, tempered_prior

__all__ = ["OptimumResult", "optimize_mixture", "project_to_simplex"]


@dataclass(frozen=True)
class OptimumResult:
    """The recommended mixture and what the law predicts for it.

    ``weights`` maps domain -> share (sums to 1); ``predicted_loss`` is the objective the law
    predicts there (the weighted combination of its outputs when an objective was given);
    ``method`` is "exact" or "topk"; ``n_evaluations`` counts predictor calls on mixtures;
    ``candidates`` (topk only) are the top_k mixtures that were averaged, with their predictions.
    """

    weights: dict[str, float]
    predicted_loss: float
    method: str
    success: bool = True
    message: str = ""
    n_evaluations: int = 0
    candidates: pd.DataFrame | None = field(default=None, repr=False, compare=False)

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


# ----------------------------------------------------------------------------------------------
# predictor plumbing
# ----------------------------------------------------------------------------------------------


def _predictor_domains(predictor) -> list[str] | None:
    for attr in ("feature_names_in_", "domains_", "domains"):
        names = getattr(predictor, attr, None)
        if names is not None and not callable(names):
            return [str(n) for n in names]
    return None


def _make_objective(predictor, domains: list[str], objective) -> Callable[[np.ndarray], np.ndarray]:
    """f(W (n, d)) -> (n,) predicted objective, whatever the predictor's output shape."""
    predict = predictor.predict if hasattr(predictor, "predict") else predictor
    if not callable(predict):
        raise ValueError("predictor must have a .predict method or be a callable f(W) -> losses")
    as_frame = getattr(predictor, "feature_names_in_", None) is not None

    def raw(W: np.ndarray) -> np.ndarray:
        X = pd.DataFrame(W, columns=domains) if as_frame else W
        out = np.asarray(predict(X), dtype=float)
        if out.ndim == 0:
            out = out.reshape(1)
        if out.shape[0] != W.shape[0]:
            raise ValueError(f"predictor returned {out.shape[0]} predictions for {W.shape[0]} mixtures")
        return out

    if objective is None:
        def f(W):
            out = raw(W)
            return out if out.ndim == 1 else out.mean(axis=1)
        return f

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

    def f(W):
        out = raw(W)
        if out.ndim == 1:
            if len(s) != 1:
                raise ValueError(f"objective has {len(s)} weights but the predictor has a single output")
            return out * s[0]
        if out.shape[1] != len(s):
            raise ValueError(f"objective has {len(s)} weights but the predictor has {out.shape[1]} outputs")
        return out @ s
    return f


def _box(domains: list[str], bounds, caps) -> tuple[np.ndarray, np.ndarray]:
    lo = np.zeros(len(domains))
    hi = np.ones(len(domains))
    for arg, name in ((bounds, "bounds"), (caps, "caps")):
        unknown = [k for k in (arg or {}) if k not in domains]
        if unknown:
            raise ValueError(f"{name} name unknown domain(s) {unknown}; domains are {domains}")
    for k, (a, b) in (bounds or {}).items():
        i = domains.index(k)
        if a is None:
            a = 0.0
        if b is None:
            b = 1.0
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
) -> OptimumResult:
    """Mixture that minimises a fitted law's predicted loss, within bounds and repetition caps.

    Parameters
    ----------
    predictor : a fitted law (``.predict(W)``) or a callable ``f(W (n, d)) -> (n,) or (n, m)``.
    domains : names of the predictor's inputs, in order (default: its ``feature_names_in_``).
    objective : for multi-output laws, non-negative weights over the outputs (a vector in output
        order, or {output name: weight} matched against ``output_names_``), e.g. the validation
        proportions of an aggregate loss. Default: the single output, or the mean of several.
    bounds : {domain: (lo, hi)} share limits. caps : {domain: max share}, e.g. from repetition
        limits (``available_tokens * max_epochs / budget_tokens``). Domains not named are free.
    method : "exact" (multi-start SLSQP; for smooth laws) or "topk" (RegMix simulation; for
        tree models and other non-smooth predictors).
    n_starts : SLSQP starts (the centre of the feasible box plus Dirichlet draws).
    n_samples, top_k, prior, temperature : topk sampling: ``Dirichlet(prior^temperature * s)``
        with s log-uniform in [0.1, 5] (RegMix); prior defaults to uniform. Samples outside the
        bounds are rejected (topped up by projected samples if fewer than top_k survive); the
        top_k lowest-predicted are averaged.
    rng : seed or Generator.

    Raises ValueError for infeasible constraints or unknown domain names.
    """
    domains = _resolve_domains(predictor, domains)
    lo, hi = _box(domains, bounds, caps)
    f = _make_objective(predictor, domains, objective)
    gen = np.random.default_rng(rng)
    p = _prior_array(prior, domains)

    if method == "exact":
        return _exact(f, domains, lo, hi, p, gen, n_starts, temperature)
    if method == "topk":
        return _topk(f, domains, lo, hi, p, gen, n_samples, top_k, temperature, batch_size)
    raise ValueError(f"method must be 'exact' or 'topk', got {method!r}")


def _exact(f, domains, lo, hi, prior, gen, n_starts, temperature) -> OptimumResult:
    if n_starts < 1:
        raise ValueError(f"n_starts must be >= 1, got {n_starts}")
    d = len(domains)
    center = project_to_simplex(np.full(d, 1.0 / d), lo, hi)
    starts = [center]
    if n_starts > 1:
        starts += list(project_to_simplex(_sample(gen, prior, n_starts - 1, temperature), lo, hi))
    n_eval = 0

    def fun(w):
        nonlocal n_eval
        n_eval += 1
        return float(f(w[None, :])[0])

    cons = [{"type": "eq", "fun": lambda w: np.sum(w) - 1.0, "jac": lambda w: np.ones_like(w)}]
    box = list(zip(lo, hi))
    best_w, best_v, best_msg, ok = None, np.inf, "", False
    # Starting values count too: a non-smooth predictor can leave SLSQP where it began.
    start_vals = f(np.array(starts))
    n_eval += len(starts)
    i0 = int(np.argmin(start_vals))
    best_w, best_v, best_msg = starts[i0], float(start_vals[i0]), "best start (no SLSQP improvement)"
    for w0 in starts:
        res = sopt.minimize(fun, w0, method="SLSQP", bounds=box, constraints=cons,
                            options={"maxiter": 500, "ftol": 1e-12})
        w = project_to_simplex(res.x, lo, hi)
        v = fun(w)
        if v < best_v - 1e-15:
            best_w, best_v, best_msg, ok = w, v, str(res.message), bool(res.success)
        elif res.success:
            ok = True
    weights = {k: float(v) for k, v in zip(domains, best_w)}
    return OptimumResult(weights, float(best_v), "exact", success=ok, message=best_msg, n_evaluations=n_eval)


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
